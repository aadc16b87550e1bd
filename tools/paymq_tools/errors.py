"""The tools' own failures: a child process that did not start or answer, a broker node, a
database or PostgreSQL that could not be set up, a dev chain, a benchmark, a scenario that does
not fit its broker. Outside paymq's payment taxonomy (common/errors.py): none is an answer about
a payment, so no handler of payment failures takes one for it. The `paymq` command ends on one
with a single line and exit status 1 (paymq/clikit.py, CommandFailed)."""

from __future__ import annotations

from paymq.clikit import CommandFailed


class ToolError(CommandFailed):
    """Base of every error a tool raises on purpose."""

    code = "tool_error"
