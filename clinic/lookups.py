"""Integer lookups that never hand the database driver a number it cannot bind.

An id typed by hand can be any number of digits (`?patient=12345678901234567890`, a ticked
checkbox whose value was edited). SQLite binds integers up to 64 bits and raises OverflowError
past that, a server error wherever a form or filter looks the id up. No row has such an id, so
a number outside the column's range simply matches nothing: Django already does this for
`exact`, `lt` and the like on integer columns, not for `in` nor for foreign keys. Registered by
clinic.apps at start-up, so every form field, admin widget and filter of every app gets it.
"""

from django.core.exceptions import EmptyResultSet, FieldError
from django.db.models import ForeignObject, IntegerField
from django.db.models.fields.related_lookups import RelatedExact, RelatedIn
from django.db.models.lookups import In


def _integer_range(field, connection):
    """(lowest, highest) the column can hold; (None, None) when it is not an integer."""
    try:
        field = getattr(field, "target_field", field)  # a foreign key holds its target's ids
    except FieldError:  # a foreign key over several columns
        return None, None
    try:
        return connection.ops.integer_field_range(field.get_internal_type())
    except KeyError:
        return None, None


def _outside(value, low, high):
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and ((low is not None and value < low) or (high is not None and value > high))
    )


class _InWithinRange:
    def process_rhs(self, compiler, connection):
        if self.rhs_is_direct_value():
            low, high = _integer_range(self.lhs.output_field, connection)
            self.rhs = [v for v in self.rhs if not _outside(v, low, high)]
        return super().process_rhs(compiler, connection)


class IntegerInWithinRange(_InWithinRange, In):
    pass


class RelatedInWithinRange(_InWithinRange, RelatedIn):
    pass


class RelatedExactWithinRange(RelatedExact):
    def process_rhs(self, compiler, connection):
        if self.rhs_is_direct_value():
            low, high = _integer_range(self.lhs.output_field, connection)
            if _outside(self.rhs, low, high):
                raise EmptyResultSet
        return super().process_rhs(compiler, connection)


def register():
    IntegerField.register_lookup(IntegerInWithinRange)
    ForeignObject.register_lookup(RelatedInWithinRange)
    ForeignObject.register_lookup(RelatedExactWithinRange)
