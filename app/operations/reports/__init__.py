"""Reports: the monthly usage report (利用実績報告書) and the dashboard figures.

- ``monthly``: the figures of one month (plain functions over the recorded events)
- ``output``: PDF and CSV, the monthly-collections chart as server-side SVG
- ``delivery``: generate and store a month's report, e-mail it, the scheduled run
- ``dashboard``: the landing page's figures and charts
"""
