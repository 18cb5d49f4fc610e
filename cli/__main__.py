"""`python -m cli ...` is `azr-exec ...`."""

import sys

from cli.main import main

sys.exit(main())
