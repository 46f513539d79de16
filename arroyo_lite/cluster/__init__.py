"""From laptop to cluster: check a file for Arroyo, and deploy it through Arroyo's REST API.

``contract`` (the API's paths and JSON shapes, from Arroyo's source), ``portability`` (the
strict check: extensions and what Arroyo does differently), ``client`` (aiohttp calls, every
failure a one-line ``ClusterError``), ``deploy`` (validate, create, follow the job).

Layering: this package sits beside the session, below ``cli/`` (the only importer); it may
import ``sql/`` and the values.
"""
