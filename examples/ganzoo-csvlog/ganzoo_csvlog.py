"""An example third-party ganzoo observer: every logged step as one row of a CSV file in the run folder."""

import csv

from pydantic import Field

import ganzoo


class CSVLogParams(ganzoo.Params):
    file: str = Field("losses.csv", description="file name inside the run folder")
    columns: list[str] = Field(["step", "d_loss", "g_loss", "gap", "img_per_s"], description="metrics to write, in order")


class CSVLog(ganzoo.Callback):
    name = "csvlog"
    description = "Logged metrics as CSV rows in the run folder (example observer plugin)"
    Params = CSVLogParams

    def on_start(self, run):
        path = run.run_dir / self.params.file
        new = run.start == 0 or not path.exists()
        self.file = path.open("w" if new else "a", newline="")
        self.writer = csv.writer(self.file)
        if new:
            self.writer.writerow(self.params.columns)

    def on_step(self, run, record):
        if run.logged:  # the metrics of a logged step (every train.log_every steps)
            self.writer.writerow([run.logged.get(c, "") for c in self.params.columns])
            self.file.flush()

    def on_end(self, run):
        self.file.close()


@ganzoo.hookimpl
def register_callbacks(register):
    register(CSVLog)
