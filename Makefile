# The two commands a new user needs:
#   make run   set up and run the platform with demo data at http://127.0.0.1:8000
#   make test  run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
UV      = $(VENV)/bin/uv
export DJANGO_SETTINGS_MODULE ?= mlops_site.settings.local

.PHONY: run test install install-dev migrate seed lint format worker clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9 || $(VENV)/bin/pip install --quiet uv

$(VENV)/.installed-base: requirements/base.txt $(PY)
	$(UV) pip install --quiet --python $(PY) -r requirements/base.txt
	touch $@

$(VENV)/.installed-dev: requirements/dev.txt requirements/base.txt $(PY)
	$(UV) pip install --quiet --python $(PY) -r requirements/dev.txt
	$(UV) pip install --quiet --python $(PY) -e clients/python
	touch $@ $(VENV)/.installed-base

install: $(VENV)/.installed-base
install-dev: $(VENV)/.installed-dev

migrate: install
	@mkdir -p var
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py ensure_demo_admin
	$(PY) manage.py seed_demo

run: seed
	@echo "Starting web, worker and beat at http://127.0.0.1:8000 (Ctrl-C stops all three)"
	$(VENV)/bin/honcho start -f Procfile

test: install-dev
	DJANGO_SETTINGS_MODULE=mlops_site.settings.test $(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/bandit -c pyproject.toml -q -r apps -lll

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

worker: install
	$(VENV)/bin/celery -A celery_app worker -l info -Q default,training,monitoring,rollouts

clean:
	rm -rf var/broker var/cache
