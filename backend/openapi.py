"""Print the OpenAPI document: `python -m backend.openapi > openapi.json` (for the typed client)."""

from __future__ import annotations

import json
import sys

from .config import Settings
from .main import create_app


def main() -> None:
    app = create_app(Settings())
    json.dump(app.openapi(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
