"""``partitur analytics``: the Parquet store's state and the queries, from the command line.

Queries read the Parquet files directly (no server needed); ``flush`` writes what the worker
has processed but the projector has not written yet.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from partitur.analytics.export import render
from partitur.analytics.service import AnalyticsService
from partitur.cli_options import open_services, store_options
from partitur.errors import InvalidInput


@click.group()
def analytics() -> None:
    """Analytics on the Parquet event store: funnels, paths, retention, KPIs, journeys."""


def _service(data_dir: Path | None, database_url: str | None) -> tuple[Any, AnalyticsService]:
    services = open_services(data_dir, database_url)
    return services, services.extra["analytics"]


def _request(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    text = sys.stdin.read() if str(path) == "-" else path.read_text()
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not JSON or YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"{path}: expected an object (the request body)")
    return doc


def _emit(kind: str, result: dict[str, Any], fmt: str, output: Path | None,
          table: Any = None) -> None:
    if fmt in ("csv", "parquet"):
        data, _ = render(kind, result, fmt)
        if output is None and fmt == "parquet":
            raise InvalidInput("--format parquet needs --output FILE")
        if output is None:
            click.echo(data.decode(), nl=False)
        else:
            output.write_bytes(data)
            click.echo(f"wrote {output}")
        return
    if fmt == "json" or table is None:
        text = json.dumps(result, indent=2, ensure_ascii=False)
        if output is None:
            click.echo(text)
        else:
            output.write_text(text + "\n")
        return
    table(result)


def query_options(fn: Any) -> Any:
    fn = click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
                      help="Write the result to FILE.")(fn)
    fn = click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "parquet"]),
                      default="table", show_default=True, help="Output format.")(fn)
    fn = click.option("--request", "request_file", type=click.Path(path_type=Path),
                      default=None, help="The request body (JSON or YAML, '-' for stdin); "
                      "options given as well override it.")(fn)
    fn = click.option("--to", "to_", default=None, help="End (exclusive), ISO 8601.")(fn)
    fn = click.option("--from", "from_", default=None, help="Start (inclusive), ISO 8601.")(fn)
    return fn


def _range(doc: dict[str, Any], from_: str | None, to_: str | None) -> None:
    if from_:
        doc["from"] = from_
    if to_:
        doc["to"] = to_


@analytics.command("status")
@store_options
def status(data_dir: Path | None, database_url: str | None) -> None:
    """Files, rows and what still waits for the projector."""
    services, service = _service(data_dir, database_url)
    for key, value in service.status().items():
        click.echo(f"{key}: {value}")
    services.close()


@analytics.command("flush")
@store_options
@click.option("--compact", is_flag=True, help="Also merge small files now.")
def flush(data_dir: Path | None, database_url: str | None, compact: bool) -> None:
    """Write every processed event to Parquet now."""
    services, service = _service(data_dir, database_url)
    written = service.projector.flush()
    if compact:
        service.projector.cycle(compact=True)
    click.echo(f"wrote {written} events; {service.status()['files']} files")
    services.close()


def _funnel_table(result: dict[str, Any]) -> None:
    def show(steps: list[dict[str, Any]]) -> None:
        for s in steps:
            rate = "-" if s["conversion_rate"] is None else f"{s['conversion_rate']:.1%}"
            median = s["median_time_to_convert_s"]
            took = "" if median is None else f"  median {median:g}s"
            click.echo(f"  {s['index']}. {s['name']:<40} {s['count']:>9}  {rate:>7}{took}")

    show(result["steps"])
    click.echo(f"  excluded: {result['excluded_people']}")
    for group in result.get("breakdown", []):
        click.echo(f"breakdown {group['value']!r}:")
        show(group["steps"])


@analytics.command("funnel")
@store_options
@query_options
@click.option("--step", "steps", multiple=True, help="A step's event name (repeat, in order).")
@click.option("--window", default=None, help="Conversion window, e.g. 14d, 12h.")
@click.option("--order", type=click.Choice(["ordered", "strict", "any"]), default=None)
@click.option("--breakdown", default=None, help="Property to break down by.")
@click.option("--attribution", default=None,
              help="first_touch, last_touch, all_events or step:N.")
def funnel(data_dir: Path | None, database_url: str | None, from_: str | None,
           to_: str | None, request_file: Path | None, fmt: str, output: Path | None,
           steps: tuple[str, ...], window: str | None, order: str | None,
           breakdown: str | None, attribution: str | None) -> None:
    """A funnel: per step, people, conversion and time to convert."""
    doc = _request(request_file)
    if steps:
        doc["steps"] = [{"event": s} for s in steps]
    _range(doc, from_, to_)
    for key, value in (("window", window), ("order", order)):
        if value:
            doc[key] = value
    if breakdown:
        doc["breakdown"] = {"property": breakdown, **(
            {"attribution": attribution} if attribution else {})}
    services, service = _service(data_dir, database_url)
    try:
        _emit("funnel", service.funnel(doc), fmt, output, _funnel_table)
    finally:
        services.close()


def _run(kind: str, method: str, doc: dict[str, Any], data_dir: Path | None,
         database_url: str | None, fmt: str, output: Path | None, table: Any = None) -> None:
    services, service = _service(data_dir, database_url)
    try:
        _emit(kind, getattr(service, method)(doc), fmt, output, table)
    finally:
        services.close()


def _set(doc: dict[str, Any], **values: Any) -> dict[str, Any]:
    doc.update({k: v for k, v in values.items() if v is not None})
    return doc


@analytics.command("time-to-convert")
@store_options
@query_options
@click.option("--step", "steps", multiple=True, help="A step's event name (repeat, in order).")
@click.option("--window", default=None, help="Conversion window, e.g. 14d.")
@click.option("--bins", type=int, default=None, help="Number of bins (default 20).")
def time_to_convert(data_dir: Path | None, database_url: str | None, from_: str | None,
                    to_: str | None, request_file: Path | None, fmt: str, output: Path | None,
                    steps: tuple[str, ...], window: str | None, bins: int | None) -> None:
    """How long people took from one funnel step to another, as a histogram."""
    doc = _request(request_file)
    if steps:
        doc["steps"] = [{"event": s} for s in steps]
    _range(doc, from_, to_)

    def table(result: dict[str, Any]) -> None:
        click.echo(f"people: {result['people']}  median: {result.get('median_s')}s")
        for b in result["bins"]:
            click.echo(f"  {b['from_s']:>12g}s - {b['to_s']:<12g}s {b['count']:>9}")

    _run("time_to_convert", "time_to_convert", _set(doc, window=window, bins=bins), data_dir,
         database_url, fmt, output, table)


@analytics.command("paths")
@store_options
@query_options
@click.option("--start", default=None, help="Paths after this event.")
@click.option("--end", default=None, help="Paths before this event.")
@click.option("--steps", type=int, default=None, help="How many events (default 3).")
@click.option("--min-edge", type=int, default=None, help="Hide links fewer people took.")
def paths(data_dir: Path | None, database_url: str | None, from_: str | None, to_: str | None,
          request_file: Path | None, fmt: str, output: Path | None, start: str | None,
          end: str | None, steps: int | None, min_edge: int | None) -> None:
    """The most common next (or previous) events: Sankey links with people counts."""
    doc = _request(request_file)
    _range(doc, from_, to_)

    def table(result: dict[str, Any]) -> None:
        click.echo(f"people: {result['people']}")
        for link in result["links"]:
            click.echo(f"  {link['source']:<36} -> {link['target']:<36} {link['value']:>9}")

    _run("paths", "paths", _set(doc, start=start, end=end, steps=steps, min_edge=min_edge),
         data_dir, database_url, fmt, output, table)


@analytics.command("retention")
@store_options
@query_options
@click.option("--start-event", default=None, help="First occurrence makes the cohort.")
@click.option("--return-event", default=None, help="What counts as coming back.")
@click.option("--interval", type=click.Choice(["day", "week"]), default=None)
@click.option("--periods", type=int, default=None)
def retention(data_dir: Path | None, database_url: str | None, from_: str | None,
              to_: str | None, request_file: Path | None, fmt: str, output: Path | None,
              start_event: str | None, return_event: str | None, interval: str | None,
              periods: int | None) -> None:
    """Cohorts by first event and how many came back in each later period."""
    doc = _request(request_file)
    _range(doc, from_, to_)

    def table(result: dict[str, Any]) -> None:
        for c in result["cohorts"]:
            rates = " ".join("   -  " if r is None else f"{r:6.1%}" for r in c["rates"])
            click.echo(f"  {c['cohort'][:10]} {c['size']:>8}  {rates}")

    _run("retention", "retention", _set(doc, start_event=start_event,
                                        return_event=return_event, interval=interval,
                                        periods=periods),
         data_dir, database_url, fmt, output, table)


@analytics.command("kpi")
@store_options
@query_options
@click.option("--event", default=None, help="Event name (default: every action).")
@click.option("--metric", type=click.Choice(["count", "unique_people", "sum", "avg"]),
              default=None)
@click.option("--property", "prop", default=None, help="Property for sum and avg.")
@click.option("--interval", type=click.Choice(["hour", "day"]), default=None)
@click.option("--breakdown", default=None, help="Property to break down by.")
def kpi(data_dir: Path | None, database_url: str | None, from_: str | None, to_: str | None,
        request_file: Path | None, fmt: str, output: Path | None, event: str | None,
        metric: str | None, prop: str | None, interval: str | None,
        breakdown: str | None) -> None:
    """A KPI time series with anomalies flagged against a seasonal baseline."""
    doc = _request(request_file)
    _range(doc, from_, to_)

    def table(result: dict[str, Any]) -> None:
        for series in result["series"]:
            if result["query"]["breakdown"]:
                click.echo(f"{series['value']!r}:")
            for p in series["points"]:
                mark = "  <- anomaly" if p.get("anomaly") else ""
                band = "" if p.get("expected") is None else (
                    f"  expected {p['expected']:g} ({p['lower']:g}-{p['upper']:g})")
                click.echo(f"  {p['t']}  {p['value']!s:>12}{band}{mark}")
        for a in result["anomalies"]:
            click.echo(a["message"])

    _run("kpi", "kpi", _set(doc, event=event, metric=metric, property=prop, interval=interval,
                            breakdown=breakdown),
         data_dir, database_url, fmt, output, table)


@analytics.command("journey")
@store_options
@query_options
@click.argument("key")
def journey(data_dir: Path | None, database_url: str | None, from_: str | None,
            to_: str | None, request_file: Path | None, fmt: str, output: Path | None,
            key: str) -> None:
    """Drop-off per step of journey KEY."""
    doc = _request(request_file)
    _range(doc, from_, to_)

    def table(result: dict[str, Any]) -> None:
        click.echo(f"entered: {result['entered']}")
        click.echo(f"  {'step':<20} {'reached':>8} {'moved':>7} {'waiting':>8} {'timeout':>8} "
                   f"{'exited':>7} {'goal':>6} {'ended':>6}  median")
        for s in result["steps"]:
            click.echo(f"  {s['id']:<20} {s['reached']:>8} {s['moved_on']:>7} {s['waiting']:>8} "
                       f"{s['timed_out']:>8} {s['exited']:>7} {s['goal']:>6} "
                       f"{s['completed']:>6}  {s['median_time_s']}")

    _run("journey", "journey", _set(doc, journey=key), data_dir, database_url, fmt, output,
         table)


@analytics.command("experiment")
@store_options
@query_options
@click.argument("key")
def experiment(data_dir: Path | None, database_url: str | None, from_: str | None,
               to_: str | None, request_file: Path | None, fmt: str, output: Path | None,
               key: str) -> None:
    """Every split of journey KEY as an A/B test on the journey's goal."""
    doc = _request(request_file)
    _range(doc, from_, to_)

    def table(result: dict[str, Any]) -> None:
        for split in result["splits"]:
            click.echo(f"split {split['step']} (control: {split['control']})")
            for arm in split["arms"]:
                lift = arm.get("vs_control") or {}
                extra = "" if not lift or lift.get("absolute") is None else (
                    f"  lift {lift['absolute']:+.2%} p={lift['p_value']}")
                rate = "-" if arm["conversion_rate"] is None else f"{arm['conversion_rate']:.2%}"
                click.echo(f"  {arm['name']:<16} {arm['entered']:>8} {arm['converted']:>8} "
                           f"{rate:>8}{extra}")
            if split["warning"]:
                click.echo(f"  warning: {split['warning']}")

    _run("experiment", "experiment", _set(doc, journey=key), data_dir, database_url, fmt,
         output, table)


@analytics.command("people")
@store_options
@click.option("--request", "request_file", type=click.Path(path_type=Path), required=True,
              help="The selection (JSON or YAML): source, query and which part.")
@click.option("--save", "segment", default=None, help="Save them as this static segment.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "parquet"]),
              default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None)
def people(data_dir: Path | None, database_url: str | None, request_file: Path,
           segment: str | None, fmt: str, output: Path | None) -> None:
    """The people behind an answer (one id a line), or saved as a static segment."""
    doc = _request(request_file)
    if segment:
        doc["segment"] = segment
        _run("saved", "save_people", doc, data_dir, database_url, "json", None)
        return
    doc.setdefault("limit", 10_000)

    def table(result: dict[str, Any]) -> None:
        for person in result["people"]:
            click.echo(person["profile_id"])

    _run("people", "people", doc, data_dir, database_url, fmt, output, table)
