"""The chain console: server-rendered pages under ``/ui/`` (templates and static files are package
data); see ``docs/console.md``."""
