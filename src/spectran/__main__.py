from spectran.cli import main

raise SystemExit(main())
