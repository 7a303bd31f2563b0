"""What a run runs on, and what it prints: one small module per job.

* :mod:`hut.runtime.seed`    - seeding every RNG a run draws from (shared by the trainer and ``load_run``);
* :mod:`hut.runtime.device`  - the device a run asks for, refused when it is not there, and described
  in the record (type, GPU name and count, CUDA and driver versions, torch, mixed precision);
* :mod:`hut.runtime.console` - the run's console output: one compact bar on a terminal, plain lines
  in a log file, and the libraries' own switches for their bars, colours and load reports;
* :mod:`hut.runtime.provenance` - what produced a result: the git commit and the package versions.
"""
