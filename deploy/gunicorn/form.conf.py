"""gunicorn settings for the public form (its own host): ``gunicorn -c .../form.conf.py``."""

import multiprocessing
import os

wsgi_app = "public_form:create_app()"
bind = os.environ.get("MYNUMBER_FORM_BIND", "127.0.0.1:8001")
workers = int(os.environ.get("MYNUMBER_FORM_WORKERS", 2 * multiprocessing.cpu_count() + 1))
worker_class = "gthread"
threads = 4
timeout = 60
graceful_timeout = 30
max_requests = 2000
max_requests_jitter = 200
forwarded_allow_ips = "127.0.0.1"
accesslog = "-"
# %(U)s is the path: /r/<token> would be logged. Log the status and size only.
access_log_format = '%(h)s "%(m)s" %(s)s %(b)s %(L)s'
errorlog = "-"
loglevel = "info"
worker_tmp_dir = "/run/mynumber"
