import sys

from nesf.cli import main

sys.exit(main())
