"""``python -m airlock.controller``: the controller without the ``airlock`` CLI."""

from airlock.controller.runner import main

raise SystemExit(main())
