"""Validation of X-Rechnung documents by the official rules, read from a configured
directory (KoSIT's validator configuration for XRechnung; in development and CI
`../shared/xrechnung`; the project does not copy those files).

The steps of KoSIT's scenario "EN16931 XRechnung (CII)": well-formed XML, the XRechnung
guideline id (BT-24), the UN/CEFACT CII D16B schema (lxml), then the EN 16931 and the
XRechnung Schematron rules compiled to XSLT (saxonche). A document is valid when no
finding has the level "error" (KoSIT's severity mapping and the scenario's overrides).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

GUIDELINE = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
NS = {"svrl": "http://purl.oclc.org/dsdl/svrl",
      "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
      "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}
# the scenario's customLevel overrides (KoSIT scenarios.xml, EN16931 XRechnung (CII))
CUSTOM_LEVELS = {"BR-CL-23": "warning", "BR-CL-21": "warning", "CII-SR-452": "error", "CII-SR-453": "error",
                 "CII-SR-454": "error"}
FLAG_LEVELS = {"fatal": "error", "error": "error", "warning": "warning", "warn": "warning",
               "information": "information", "info": "information"}


@dataclass(frozen=True)
class Finding:
    rule_id: str
    level: str
    text: str
    location: str = ""

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.text}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def valid(self) -> bool:
        return not self.errors


class RulesNotFound(RuntimeError):
    pass


class XRechnungValidator:
    """Compiles the rules once (about half a second); then about 25 ms per document."""

    def __init__(self, rules_dir: Path) -> None:
        resources = Path(rules_dir) / "kosit-validator-configuration-xrechnung" / "resources"
        self.xsd = resources / "cii/16b/xsd/CrossIndustryInvoice_100pD16B.xsd"
        self.schematrons = {"en16931": resources / "cii/16b/xsl/EN16931-CII-validation.xsl",
                            "xrechnung": next(iter(sorted((resources / "xrechnung").glob(
                                "3.*/xsl/XRechnung-CII-validation.xsl"))), resources / "xrechnung/missing")}
        missing = [str(p) for p in (self.xsd, *self.schematrons.values()) if not p.exists()]
        if missing:
            raise RulesNotFound(f"X-Rechnung rules not found: {', '.join(missing)}")
        self._lock = threading.Lock()
        self._compiled: dict | None = None

    def _compile(self):
        from saxonche import PySaxonProcessor

        with self._lock:
            if self._compiled is None:
                processor = PySaxonProcessor(license=False)
                xslt = processor.new_xslt30_processor()
                self._compiled = {
                    "processor": processor,
                    "schema": etree.XMLSchema(etree.parse(str(self.xsd))),
                    **{name: xslt.compile_stylesheet(stylesheet_file=str(path))
                       for name, path in self.schematrons.items()},
                }
        return self._compiled

    def validate(self, xml: bytes) -> Report:
        report = Report()
        try:
            tree = etree.ElementTree(etree.fromstring(xml, etree.XMLParser(resolve_entities=False)))
        except etree.XMLSyntaxError as exc:
            report.findings.append(Finding("XML-NOT-WELL-FORMED", "error", str(exc)))
            return report
        guideline = tree.xpath("string(/rsm:CrossIndustryInvoice/rsm:ExchangedDocumentContext"
                               "/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID)", namespaces=NS)
        if guideline != GUIDELINE:
            report.findings.append(Finding("XR-NO-SCENARIO", "error", f"BT-24 is {guideline!r}, not {GUIDELINE!r}"))
        compiled = self._compile()
        schema = compiled["schema"]
        if not schema.validate(tree):
            report.findings.extend(Finding("XSD", "error", e.message, f"line {e.line}") for e in schema.error_log)
        text = etree.tostring(tree, encoding="unicode")
        with self._lock:  # one Saxon processor, used by one thread at a time
            document = compiled["processor"].parse_xml(xml_text=text)
            for name in self.schematrons:
                executable = compiled[name]
                executable.set_global_context_item(xdm_item=document)
                svrl = executable.transform_to_string(xdm_node=document)
                report.findings.extend(self._findings(svrl))
        return report

    @staticmethod
    def _findings(svrl: str) -> list[Finding]:
        root = etree.fromstring(svrl.encode())
        found = []
        for node in root.xpath("//svrl:failed-assert | //svrl:successful-report", namespaces=NS):
            rule_id = node.get("id") or "UNSPECIFIC"
            flag = node.get("flag") or node.get("role") or ""
            text = " ".join("".join(node.xpath("svrl:text//text()", namespaces=NS)).split())
            found.append(Finding(rule_id, CUSTOM_LEVELS.get(rule_id) or FLAG_LEVELS.get(flag, "error"), text,
                                 node.get("location", "")))
        return found


def create_validator(settings) -> XRechnungValidator | None:
    """The validator of the configured rules directory; None when none is configured.
    A configured directory without the rules is an error at start-up, not a silent skip."""
    if settings.xrechnung_rules_dir is None:
        return None
    return XRechnungValidator(settings.xrechnung_rules_dir)
