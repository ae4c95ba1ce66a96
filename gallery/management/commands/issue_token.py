"""``manage.py issue_token USERNAME [--role …] [--oda]``: the token alone on the last line."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from gallery import oda_tokens
from gallery.models import ApiToken
from gallery.roles import ROLES, assign_role, has_role


class Command(BaseCommand):
    help = (
        "Issue an API token for USERNAME (created if needed) with a role. --oda issues a "
        "JWT for the oda_api client instead. The token is printed alone on the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--role",
            choices=ROLES,
            default=None,
            help="role to give the user (default: keep; new users: reader)",
        )
        parser.add_argument(
            "--oda", action="store_true", help="issue a JWT for oda_api's GalleryDispatcherAPI"
        )
        parser.add_argument("--name", default="", help="what the token is for")
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="expire after this many days (API tokens: default never; oda tokens: 30)",
        )

    @transaction.atomic
    def handle(self, *args, username, role, oda, name, days, **opts):
        username = username.strip()
        if not username or len(username) > 150:
            raise CommandError("give a user name of 1 to 150 characters")
        if days is not None and days <= 0:
            raise CommandError("--days must be positive")
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save()
        if role or created:
            assign_role(user, role or "reader")
        self.stdout.write(
            f"user {user.username} ({'created' if created else 'existing'}), "
            f"role {role or 'unchanged'}"
        )
        if oda:
            roles = [oda_tokens.CONTRIBUTOR_ROLE] if has_role(user, "contributor") else []
            token = oda_tokens.issue(user, roles, (days or 30) * 86400)
        else:
            expires = timezone.now() + timedelta(days=days) if days else None
            _, token = ApiToken.issue(user, name or "issued by manage.py", expires)
        self.stdout.write(token)
