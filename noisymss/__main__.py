import sys

from noisymss.cli import main

sys.exit(main())
