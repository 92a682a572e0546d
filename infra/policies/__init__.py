"""The project's checkov policies: what a Flex Consumption deployment of signals-export must keep to deploy.

checkov loads every module of this folder as a custom check (`external-checks-dir` in .checkov.yaml);
their shared reading of the templates is in lib/, which has no __init__.py so that checkov does not load
it as a check. infra/README.md lists the policies and their sources.
"""
