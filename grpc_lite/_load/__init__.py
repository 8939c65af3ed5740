"""``grpc-lite load``: load-test a gRPC method with ghz's flags and report (issue 18).

``add_parser`` registers the subcommand (cheap: argparse only); ``run_command`` runs it.
The rest is imported when a run starts: ``_command`` (checks, the run, exit status),
``_engine`` (one process's workers and tally), ``_schedule`` (rate and concurrency
schedules), ``_histogram`` (HDR buckets), ``_worker`` (``--cpus`` processes), ``_report``
(ghz's JSON, summary, CSV, Influx), ``_html``, ``_progress``, ``_assert``.
"""

from ._command import add_parser, run_command

__all__ = ["add_parser", "run_command"]
