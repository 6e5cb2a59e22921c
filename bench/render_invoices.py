"""Benchmark: rendering invoice PDFs with three engines on the same invoice HTML.

For a one-page invoice (1 line) and a 50-line invoice (2 pages) it renders, in one run:

- **kontor**: the invoicing service's renderer (`InvoicePdf`: the letterhead rendered once and
  drawn under each page, shared font configuration, Pango contexts and style sheets, reduced
  user-agent sheet, XML-parsed template), as the billing run uses it;
- **kontor+zugferd**: the same, as a ZUGFeRD hybrid (PDF/A-3b with the X-Rechnung embedded);
- **kontor-uncached**: Kontor's renderer without the caches kept between invoices (computed styles,
  Pango contexts, font subsets): what those caches are worth;
- **weasyprint-default**: `weasyprint.HTML(string=html).write_pdf()` on the same page as one
  document (letterhead inline, style sheets inlined), i.e. what a naive integration does;
- **wkhtmltopdf**: the Debian package (the engine of other invoicing systems), one process per
  invoice, reading the same HTML on stdin. It ignores CSS paged media (@page margin boxes: no
  page numbers or footer), so it does less work for the same input.

Round i renders the i-th of as many invoices of each size, each with its own number, quantities and
prices, as a billing run would (always the same text would flatter whatever keeps work by text).
The engines take turns (round robin), so the machine's noise hits them alike. It prints
per case and engine the median wall-clock time, its p90, the median CPU time (the process's
own, or wkhtmltopdf's; on a shared virtual machine the wall clock also counts time the CPU was
taken away), the ratio to kontor, pages and size, and what a monthly billing run of 5,000
invoices would spend rendering at the median.

    .venv/bin/python bench/render_invoices.py [--runs 30] [--wkhtml-runs 10]
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal as D

import weasyprint
from pypdf import PdfReader

from kontor.money import round_money
from kontor_invoicing.adapters.documents import xrechnung
from kontor_invoicing.adapters.pdf import InvoicePdf
from kontor_invoicing.domain import model
from kontor_invoicing.settings import Seller

NOW = dt.datetime(2027, 1, 15, 9, tzinfo=dt.UTC)
BUYER = {"name": "ACME Werkstatt GmbH", "language": "de", "vat_id": "DE811569869", "kind": "company",
         "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}}


def invoice(lines: int, variant: int = 0) -> model.Invoice:
    """An issued invoice with this many lines; each variant has its own number, quantities and prices, as the
    invoices of a billing run do (the same text every time would flatter anything that keeps work by text)."""
    def line(i: int) -> model.Line:
        quantity = D("1.5") + D("0.25") * ((variant + i) % 7)
        price = D("640.00") + D("12.50") * ((variant * 3 + i) % 11)
        return model.Line(f"Konzeption und Umsetzung, Arbeitspaket {i + 1}", quantity, "day", price,
                          round_money(quantity * price, "EUR"), "S", D("19"))
    items = tuple(line(i) for i in range(lines))
    draft = model.Invoice(id=uuid.uuid4(), order_id=uuid.uuid4(), member_id="m", client_id=uuid.uuid4(), seq=1,
                          kind="invoice", schedule_kind="after_completion", status="draft", currency="EUR",
                          lines=items, invoice_date=NOW.date(), due_in_days=14, created_at=NOW,
                          project_name="Relaunch 2027", contact_name="Erika Muster",
                          service_period_start=dt.date(2027, 1, 1), service_period_end=dt.date(2027, 1, 31),
                          buyer=BUYER)
    return model.issue(draft, number=f"2027-{42 + variant:06d}", issue_date=NOW.date())


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (wkhtmltopdf)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--wkhtml-runs", type=int, default=10)
    args = parser.parse_args()

    seller = Seller()
    renderer = InvoicePdf(seller)
    uncached = InvoicePdf(seller, caches=False)
    wkhtmltopdf = shutil.which("wkhtmltopdf")
    print(f"WeasyPrint {weasyprint.__version__}; Python {sys.version.split()[0]} ({sys.executable} -> "
          f"{os.path.realpath(sys.executable)}); wkhtmltopdf: {wkhtmltopdf or 'not installed (make setup)'}")
    print(f"{'case':<10} {'engine':<20} {'median ms':>10} {'p90 ms':>8} {'cpu ms':>7} {'× kontor':>9} {'pages':>6} "
          f"{'KiB':>6}")
    for lines in (1, 50):
        # round i renders invoice i (and i's HTML and XML, made beforehand) with every engine
        invoices = [invoice(lines, variant) for variant in range(args.runs)]
        htmls = [renderer.standalone_html(inv) for inv in invoices]
        xmls = [xrechnung(inv, seller) for inv in invoices]
        # each lambda binds this case's lists (defaults), not whatever the loop variables hold when it runs
        engines = {
            "kontor": (lambda i, invoices=invoices: renderer.render(invoices[i]), args.runs),
            "kontor+zugferd": (lambda i, invoices=invoices, xmls=xmls: renderer.render(invoices[i], embed_xml=xmls[i]),
                               args.runs),
            "kontor-uncached": (lambda i, invoices=invoices: uncached.render(invoices[i]), args.runs),
            "weasyprint-default": (lambda i, htmls=htmls: weasyprint.HTML(string=htmls[i]).write_pdf(), args.runs),
        }
        if wkhtmltopdf:
            engines["wkhtmltopdf"] = (lambda i, htmls=htmls: subprocess.run(
                [wkhtmltopdf, "--quiet", "--page-size", "A4", "--encoding", "utf-8", "-", "-"],
                input=htmls[i].encode(), capture_output=True, check=True,
                env={"QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": tempfile.gettempdir()}).stdout,
                args.wkhtml_runs)
        # round robin, so that the machine's noise hits every engine alike
        times: dict[str, list[float]] = {name: [] for name in engines}
        cpu: dict[str, list[float]] = {name: [] for name in engines}
        pdfs: dict[str, bytes] = {}
        for name, (render, _) in engines.items():
            pdfs[name] = render(0)  # warm-up: imports, font lookup, caches
        for round_ in range(args.runs):
            print(f"  {lines} line(s): round {round_ + 1}/{args.runs}", end="\r", file=sys.stderr, flush=True)
            for name, (render, runs) in engines.items():
                if round_ < runs:
                    start, start_cpu = time.perf_counter(), _cpu()
                    render(round_)
                    times[name].append((time.perf_counter() - start) * 1000)
                    cpu[name].append((_cpu() - start_cpu) * 1000)
        print(" " * 40, end="\r", file=sys.stderr)
        base = statistics.median(times["kontor"])
        for name, measured in times.items():
            median = statistics.median(measured)
            p90 = statistics.quantiles(measured, n=10)[-1] if len(measured) >= 10 else max(measured)
            pages = len(PdfReader(io.BytesIO(pdfs[name])).pages)
            print(f"{lines:>3} lines  {name:<20} {median:>10.1f} {p90:>8.1f} {statistics.median(cpu[name]):>7.1f} "
                  f"{median / base:>9.2f} {pages:>6} "
                  f"{len(pdfs[name]) / 1024:>6.1f}")
        print(f"{'':<10} a billing run of 5,000 such invoices: {5000 * base / 1000 / 60:.1f} min of rendering (kontor)")


if __name__ == "__main__":
    main()
