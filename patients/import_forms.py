"""Forms of the patient import pages: the upload, the column mapping, the import button."""

from django import forms
from django.conf import settings

from clinic.uploads import megabytes
from patients import importing


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 or Windows-1252 text, separated by commas or semicolons, with a header "
        "row naming the columns.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text += (
            f" At most {megabytes(settings.IMPORT_MAX_BYTES)} and "
            f"{settings.IMPORT_MAX_ROWS:,} rows."
        )
        self.data_bytes = None

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.IMPORT_MAX_BYTES
        if upload.size > limit:
            # A file past the largest upload was not even kept (clinic.uploads): its size only.
            raise forms.ValidationError(
                f"The file is {megabytes(upload.size)}; the limit is {megabytes(limit)}. Split it "
                f"into files of at most {settings.IMPORT_MAX_ROWS:,} rows and import them one "
                "after another."
            )
        upload.seek(0)
        data = upload.read(limit + 1)
        try:
            importing.read_csv(data)
        except importing.FileProblem as problem:
            raise forms.ValidationError(str(problem)) from None
        self.data_bytes = data
        return upload


LEAVE_OUT = ""
FIELD_CHOICES = [
    (LEAVE_OUT, "Leave out (not imported)"),
    *((c.key, f"{c.label}{' (required)' if c.required else ''}") for c in importing.COLUMNS),
]


class MappingForm(forms.Form):
    """One choice per column of the file: the field it fills, or left out."""

    def __init__(self, *args, header, mapping, **kwargs):
        super().__init__(*args, **kwargs)
        self.header = header
        for index, name in enumerate(header):
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=name or f"Column {index + 1} (no name)",
                choices=FIELD_CHOICES,
                required=False,
                initial=mapping[index] if index < len(mapping) else LEAVE_OUT,
            )

    def mapping(self):
        return [self.cleaned_data.get(f"column_{i}") or LEAVE_OUT for i in range(len(self.header))]

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            for problem in importing.mapping_problems(self.header, self.mapping()):
                self.add_error(None, problem)
        return cleaned

    def columns(self):
        """(bound field, index) per column, for the template."""
        return [(self[f"column_{i}"], i) for i in range(len(self.header))]


class RunForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0, max_value=2**31 - 1)
    exclude_refused = forms.BooleanField(required=False)
