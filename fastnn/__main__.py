"""``python -m fastnn``: runs the command line, :func:`fastnn.cli.main`."""
import sys

from .cli import main
from .cli.main import infer_task  # noqa: F401  (its import path before fastnn.cli)

if __name__ == "__main__":
    sys.exit(main())
