"""Only what pyproject.toml cannot say: the top-level ``migrations/`` folder (the source of
truth for the schema) ships inside the wheel as the package data of ``ledger.migrations``, so
an installed ``ledger migrate`` finds it (see ledger/migrate.py: migrations_dir)."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["ledger*", "api*"],
                                       exclude=["*__pycache__*"]), "ledger.migrations"],
    package_dir={"ledger.migrations": "migrations"},
)
