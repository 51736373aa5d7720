# Two commands set up and run everything: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[all,test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py --out out

test: $(STAMP) lint
	NEUROPLEX_STRICT_PLUGINS=1 $(PY) -m pytest -q

# style (ruff) on all sources; types (mypy) on the typed public modules. mypy reads the
# installed layout (core/ is `neuroplex`), so it runs on a tree of links under build/.
RUFF_RULES := --select E4,E7,E9,F --ignore E741
TYPED := neuroplex.settings neuroplex.executors neuroplex.shards neuroplex.kinds neuroplex.batching neuroplex.runners neuroplex.integration neuroplex.solver \
	neuroplex.api neuroplex.hookspecs neuroplex.sbml.runner neuroplex.plugins.snn.runner \
	neuroplex.plugins.torch_solver.integrator neuroplex.plugins.torch_solver.stepper \
	neuroplex.plugins.torch_solver.loop neuroplex.plugins.torch_solver.state neuroplex.plugins.torch_solver.control
TYPECHECK := build/typecheck

lint: $(STAMP)
	$(PY) -m ruff check core sbml plugins $(RUFF_RULES)
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/neuroplex
	for f in core/*.py; do ln -s ../../../$$f $(TYPECHECK)/neuroplex/; done
	ln -s ../../../sbml $(TYPECHECK)/neuroplex/sbml && ln -s ../../../plugins $(TYPECHECK)/neuroplex/plugins
	cd $(TYPECHECK) && ../../$(PY) -m mypy --ignore-missing-imports --follow-imports=silent \
		--cache-dir ../mypy-cache $(addprefix -p ,$(TYPED))

# side-by-side speed runs against the peers (outside `make test`); one: `python -m benchmarks NAME`
bench: $(STAMP)
	@for script in benchmarks/*_bench.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) out build *.egg-info
