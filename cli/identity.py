"""``tessera user`` and ``tessera token``: accounts and API tokens, straight in the
instance's database (no server needed)."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cli import _context
from cli._context import CONFIG_OPTION

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from engine.database import Connection
    from engine.identity import Identity
    from runtime.settings import Settings

T = TypeVar("T")


def _run(settings: Settings, work: Callable[[Identity, Connection], Awaitable[T]]) -> T:
    from engine import open_database
    from engine.identity import Identity, IdentityError

    _context.require_migrated(settings)

    async def run() -> T:
        database = await open_database(settings.database_url, pool_size=1)
        try:
            async with database.transaction() as conn:
                return await work(Identity(database.sa_dialect), conn)
        finally:
            await database.close()

    try:
        return asyncio.run(run())
    except IdentityError as exc:
        _context.fail(exc.detail)


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@click.group("user")
def user_group() -> None:
    """Create the users who sign in to the API and the web UI."""


@user_group.command("create")
@CONFIG_OPTION
@click.argument("name")
@click.option(
    "--password",
    default=None,
    help="At least 8 characters. Without it the user can only use API tokens.",
)
@click.option(
    "--role",
    "roles",
    default="",
    help="Comma-separated roles from the packs' roles.yaml, or admin.",
)
@click.option(
    "--locale",
    default=None,
    help="How the user reads numbers, money and dates (de_DE, en_US); default: the "
    "instance's locale: setting.",
)
@click.option(
    "--timezone",
    default=None,
    help="The user's time zone (Europe/Berlin); default: the instance's timezone: setting.",
)
def create_user_command(
    config: str | None,
    name: str,
    password: str | None,
    roles: str,
    locale: str | None,
    timezone: str | None,
) -> None:
    """Create the user NAME with its roles."""
    settings = _context.load_settings(config)
    role_names = [r.strip() for r in roles.split(",") if r.strip()]

    async def work(identity: Identity, conn: Connection) -> Any:
        return await identity.create_user(
            conn, name, password, role_names, locale=locale, timezone=timezone
        )

    user = _run(settings, work)
    kind = "" if password is not None else " (no password: API tokens only)"
    click.echo(f"user {user.username} created with id {user.id}{kind}")
    for role in _undeclared(settings, role_names):
        click.echo(
            f"warning: no roles.yaml of this instance declares the role '{role}'; "
            "it grants nothing until one does",
            err=True,
        )


@user_group.command("preferences")
@CONFIG_OPTION
@click.argument("name")
@click.option("--locale", default=None, help="de_DE, en_US...; an empty value: the instance's.")
@click.option(
    "--timezone", default=None, help="Europe/Berlin, UTC...; an empty value: the instance's."
)
def preferences_command(
    config: str | None, name: str, locale: str | None, timezone: str | None
) -> None:
    """Set how the user NAME reads numbers, money and dates: their locale and time zone
    (what is not given stays as it is)."""
    settings = _context.load_settings(config)

    async def work(identity: Identity, conn: Connection) -> Any:
        user = await identity.user_named(conn, name)
        if user is None:
            return None
        return await identity.set_preferences(
            conn,
            name,
            locale=user.locale if locale is None else locale,
            timezone=user.timezone if timezone is None else timezone,
        )

    user = _run(settings, work)
    if user is None:
        _context.fail(f"no active user named '{name}'")
    default = " (the instance default)"
    locale_shown = user.locale or settings.locale + default
    zone_shown = user.timezone or settings.timezone + default
    click.echo(f"{user.username}: locale {locale_shown}, time zone {zone_shown}")


@user_group.command("password")
@CONFIG_OPTION
@click.argument("name")
@click.option(
    "--password",
    envvar="TESSERA_NEW_PASSWORD",
    default=None,
    help="The new password (at least 8 characters). Without it: asked for on a terminal, "
    "else generated and printed once.",
)
def password_command(config: str | None, name: str, password: str | None) -> None:
    """Set a new password for the user NAME (a forgotten one cannot be read back)."""
    settings = _context.load_settings(config)
    chosen = choose_password(password, f"New password for '{name}'")

    async def work(identity: Identity, conn: Connection) -> Any:
        await identity.set_password(conn, name, chosen.text)

    _run(settings, work)
    click.echo(f"password of {name} changed{chosen.shown}")


@dataclass(frozen=True)
class ChosenPassword:
    text: str
    generated: bool

    @property
    def shown(self) -> str:
        """What to print after the action: a generated password once, a chosen one never."""
        return f"; password: {self.text} (shown only this once)" if self.generated else ""


def choose_password(given: str | None, prompt: str) -> ChosenPassword:
    """The password a flag gave, else one typed twice on a terminal (empty: generate one),
    else, for scripts and pipes, a generated one."""
    from engine.identity import IdentityError, check_password_text

    if given is not None:
        try:
            check_password_text(given)
        except IdentityError as exc:
            _context.fail(exc.detail)
        return ChosenPassword(given, generated=False)
    if sys.stdin.isatty():
        while True:
            typed = click.prompt(
                f"{prompt} (empty: generate one)",
                default="",
                show_default=False,
                hide_input=True,
                confirmation_prompt=True,
            )
            if not typed:
                break
            try:
                check_password_text(typed)
            except IdentityError as exc:
                click.echo(f"error: {exc.detail}", err=True)
                continue
            return ChosenPassword(typed, generated=False)
    return ChosenPassword(secrets.token_urlsafe(12), generated=True)


def check_new_admin(name: str, password: str | None) -> None:
    """Refuse a first administrator's name or password given on the command line before
    anything is migrated."""
    from engine.identity import USERNAME, IdentityError, check_password_text, printable_name

    if not USERNAME.fullmatch(name):
        _context.fail(f"'{printable_name(name)}' is not a valid user name for --admin")
    if password is not None:
        try:
            check_password_text(password)
        except IdentityError as exc:
            _context.fail(f"--admin-password: {exc.detail}")


def create_first_admin(settings: Settings, name: str, password: str | None) -> None:
    """Create the administrator ``name`` if the instance has no user yet, as Django's
    ``createsuperuser`` or Frappe's ``bench new-site`` do, so the first person in can sign
    in; print how."""
    from engine.identity import IdentityError
    from metadata import ADMIN_ROLE

    async def has_users(identity: Identity, conn: Connection) -> Any:
        return await identity.has_users(conn)

    if _run(settings, has_users):
        return
    chosen = choose_password(password, f"Password for the first administrator '{name}'")

    async def create(identity: Identity, conn: Connection) -> Any:
        if await identity.has_users(conn):  # another process made one meanwhile
            raise IdentityError("a user was created meanwhile; no first administrator made")
        return await identity.create_user(conn, name, chosen.text, [ADMIN_ROLE])

    _run(settings, create)
    click.echo(f"first administrator: {name} (role {ADMIN_ROLE}){chosen.shown}")
    click.echo("sign in with it at /login, or create others with `tessera user create`")


def _undeclared(settings: Settings, roles: list[str]) -> list[str]:
    """The roles no definition declares (nothing to say if the definitions do not load:
    ``tessera validate`` tells why)."""
    from metadata import ADMIN_ROLE, DefinitionError, load_project

    try:
        project = load_project(
            settings.modules, settings.search_paths, customizations=settings.customizations
        )
    except DefinitionError:
        return []
    return [r for r in roles if r != ADMIN_ROLE and r not in project.roles]


@click.group("token")
def token_group() -> None:
    """Issue, list and revoke API tokens."""


@token_group.command("create")
@CONFIG_OPTION
@click.argument("name")
@click.option("--label", default="cli", show_default=True, help="What the token is for.")
@click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Expire after this many days (default: never; revoke it when no longer needed).",
)
def create_token_command(config: str | None, name: str, label: str, days: float | None) -> None:
    """Print a new API token for the user NAME (shown only this once)."""
    settings = _context.load_settings(config)

    from engine.identity import IdentityError

    async def work(identity: Identity, conn: Connection) -> Any:
        user = await identity.user_named(conn, name)
        if user is None:
            raise IdentityError(f"no active user named '{name}'")
        lifetime = days * 86400 if days is not None else None
        return await identity.issue_token(conn, user, label, lifetime_seconds=lifetime)

    issued = _run(settings, work)
    click.echo(issued.token)
    click.echo(
        f"token {issued.id} for {issued.user.username}, expires {_when(issued.expires_at)}",
        err=True,
    )


@token_group.command("list")
@CONFIG_OPTION
def list_tokens_command(config: str | None) -> None:
    """List tokens (never their text) with their state."""
    settings = _context.load_settings(config)

    async def work(identity: Identity, conn: Connection) -> Any:
        return await identity.tokens(conn)

    for token in _run(settings, work):
        state = f"revoked {_when(token.revoked_at)}" if token.revoked_at else "live"
        click.echo(
            f"{token.id:>6}  {token.username:<20}  {token.name:<16}  "
            f"created {_when(token.created_at)}  expires {_when(token.expires_at)}  {state}"
        )


@token_group.command("revoke")
@CONFIG_OPTION
@click.argument("token_id", type=int)
def revoke_token_command(config: str | None, token_id: int) -> None:
    """Revoke a token by its id (from ``tessera token list``)."""
    settings = _context.load_settings(config)

    async def work(identity: Identity, conn: Connection) -> Any:
        if not await identity.revoke_token(conn, token_id):
            return None
        return await identity.token_digest_of(conn, token_id)

    digest = _run(settings, work)
    if digest is None:
        _context.fail(f"no live token with id {token_id}")
    if settings.broker_url and _tell_servers(settings, digest):
        click.echo(f"token {token_id} revoked (servers refuse it from now on)")
        return
    click.echo(
        f"token {token_id} revoked (servers stop accepting it within their token cache time)"
    )


def _tell_servers(settings: Settings, digest: str) -> bool:
    """Mark the token revoked in Redis, for every server process at once; False when Redis
    cannot be reached (the servers then see it within their token cache time)."""
    from runtime.shared_auth import SharedUnavailable, shared_auth_for

    async def mark() -> bool:
        shared = shared_auth_for(settings)
        if shared is None:
            return False
        try:
            await shared.mark_revoked(digest)
        except SharedUnavailable:
            return False
        finally:
            await shared.close()
        return True

    return asyncio.run(mark())
