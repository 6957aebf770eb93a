"""Configuration: the settings object (environment variables), connector JSON, SQL schema."""

from config.settings import Settings, settings

__all__ = ["Settings", "settings"]
