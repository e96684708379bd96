"""``python -m newscrawl.replica``: build a replica site or serve one (see cli.py)."""

from __future__ import annotations

from newscrawl.replica.cli import main

raise SystemExit(main())
