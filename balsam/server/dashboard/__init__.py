"""The read-only web dashboard, mounted at /dashboard of the API's own application (balsam.server.main).

Server-rendered pages (Jinja2) with a little plain JavaScript, charts drawn as SVG by the server, every asset
shipped in the package. A user signs in with their password or an existing token and sees only their own
sites, apps, jobs and events, read through the same crud functions and ownership rules as the API.
See docs/dashboard.md.
"""
