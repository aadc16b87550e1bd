"""paymq's settings, one section per component (settings.py puts them together)."""

from common.settings.broker import DEFAULT_AMQP_URL
from common.settings.settings import SECTIONS, SETTINGS, Setting, Settings

__all__ = ["DEFAULT_AMQP_URL", "SECTIONS", "SETTINGS", "Setting", "Settings"]
