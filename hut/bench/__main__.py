from hut.bench import main

raise SystemExit(main())
