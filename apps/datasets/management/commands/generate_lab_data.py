from django.core.management.base import BaseCommand, CommandError

from apps.datasets.generator import SCENARIOS, generate_submissions, write_frame


class Command(BaseCommand):
    help = "Write deterministic sample-submission data of the demo lab to a CSV, TSV or Parquet file."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=4000, help="number of submissions (default 4000)")
        parser.add_argument("--seed", type=int, default=42, help="random seed; the same seed gives the same file")
        parser.add_argument("--scenario", default="reference", help=f"one of {', '.join(SCENARIOS)}")
        parser.add_argument("--out", required=True, help="output file; .csv, .tsv or .parquet")

    def handle(self, *args, rows, seed, scenario, out, **options):
        if scenario not in SCENARIOS:
            raise CommandError(f"Unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}.")
        if rows < 0:
            raise CommandError("--rows must be >= 0")
        if not out.lower().endswith((".csv", ".tsv", ".tab", ".parquet")):
            raise CommandError("--out must end in .csv, .tsv or .parquet")
        frame = generate_submissions(rows=rows, seed=seed, scenario=scenario)
        file_format = write_frame(frame, out)
        self.stdout.write(f"Wrote {len(frame):,} {scenario} submissions (seed {seed}) to {out} as {file_format}; "
                          f"qc_pass rate {frame['qc_pass'].mean():.1%}.")
