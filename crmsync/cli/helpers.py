"""What every ``crmsync`` command shares: the settings and Redis, or one clear line and exit 1."""

from __future__ import annotations

import click
from redis import Redis
from redis.exceptions import RedisError
from rich.console import Console

from crmsync import store
from crmsync.errors import SettingsError
from crmsync.settings import Settings

console = Console()


def settings_or_exit() -> Settings:
    """The settings, read and checked once for the command."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def redis_or_exit(settings: Settings) -> Redis:
    """A Redis client that answered a ping, closed when the command ends."""
    client = store.redis_client(settings)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(client.close)
    try:
        client.ping()
    except RedisError as exc:
        raise click.ClickException(f"Redis at REDIS_URL is unreachable ({type(exc).__name__})") from None
    return client


def settings_and_redis() -> tuple[Settings, Redis]:
    settings = settings_or_exit()
    return settings, redis_or_exit(settings)
