# mmfgmoe: `make test` and `make demo` build the environment when it is missing
# or stale (tools/build_env.sh; keyed on requirements/, setup.py and the
# script), then run. The first build compiles mmcv's ops (7-15 min on 2 cores);
# the wheel is cached in ~/.cache/mmfgmoe/wheels so later builds take minutes.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: env test demo clean-env

env:
	@VENV=$(VENV) bash tools/build_env.sh

test: env
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

demo: env
	@PYTHON=$(PYTHON) bash tools/demo.sh

clean-env:
	rm -rf $(VENV)
