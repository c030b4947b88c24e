"""gunicorn settings for the admin portal: ``gunicorn -c deploy/gunicorn/portal.conf.py``."""

import multiprocessing
import os

wsgi_app = "app.web.factory:create_app()"
bind = os.environ.get("MYNUMBER_PORTAL_BIND", "127.0.0.1:8000")  # nginx in front, never public
workers = int(os.environ.get("MYNUMBER_PORTAL_WORKERS", 2 * multiprocessing.cpu_count() + 1))
worker_class = "gthread"
threads = 4
timeout = 300  # exports and return archives stream for a while
graceful_timeout = 30
keepalive = 5
max_requests = 2000  # recycle workers: plaintext never lingers in a long-lived heap
max_requests_jitter = 200
# Requests come only from nginx on this host; X-Forwarded-For is read by app.web.netguard from
# MYNUMBER_TRUSTED_PROXIES, not by gunicorn.
forwarded_allow_ips = "127.0.0.1"
# Access lines without the query string; the application log goes to MYNUMBER_LOG_FILE.
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)s'
errorlog = "-"
loglevel = "info"
# Heartbeat files of the workers: on tmpfs, in the unit's own RuntimeDirectory (0700).
worker_tmp_dir = "/run/mynumber"
