"""E-mail appointment reminders; run it from cron or a systemd timer (README)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from plans.reminders import send_reminders


class Command(BaseCommand):
    help = (
        "E-mail patients with reminder consent about their appointments in the next N hours. "
        "Safe to run often and twice at once: each appointment time is reminded once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--hours",
            type=int,
            default=None,
            help=f"How far ahead to look (default REMINDER_HOURS, now {settings.REMINDER_HOURS}).",
        )

    def handle(self, *args, hours=None, **options):
        if hours is not None and not 1 <= hours <= 24 * 14:
            raise CommandError("--hours must be between 1 and 336 (two weeks).")
        outcome = send_reminders(hours=hours)
        self.stdout.write(
            f"Sent {len(outcome.sent)} reminder(s); {outcome.skipped} already sent or being "
            f"sent by another run; {len(outcome.failed)} failed."
        )
        for session, error in outcome.failed:
            self.stderr.write(f"Session {session.pk}: {error}")
        if outcome.failed:
            raise CommandError(f"{len(outcome.failed)} reminder(s) could not be sent; run again.")
