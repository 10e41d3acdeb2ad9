"""tickguard: keep a Korean market-data feed whole, and prove it every day."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tickguard")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

from tickguard.logsafety import cap_wire_loggers

cap_wire_loggers()  # on import, so every process that runs tickguard code has it
