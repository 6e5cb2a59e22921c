"""The sector catalogue: what members do, how it is taxed, whether the cooperative can take it.

`vat_rule`: `standard` (19 %), `reduced` (7 %, e.g. granting copyrights, § 12 (2) Nr. 7c
UStG) or `exempt` (certified teaching, § 4 Nr. 21 UStG). Sectors that are not processable
(crafts, sale of goods, activities needing a licence) are rejected on submission.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sector:
    code: str
    name_en: str
    name_de: str
    vat_rule: str  # standard | reduced | exempt
    processable: bool = True

    def name(self, language: str) -> str:
        return self.name_de if language == "de" else self.name_en


SECTORS: dict[str, Sector] = {s.code: s for s in [
    Sector("design", "Graphic and web design", "Grafik- und Webdesign", "standard"),
    Sector("software", "Software development", "Softwareentwicklung", "standard"),
    Sector("consulting", "Consulting and coaching", "Beratung und Coaching", "standard"),
    Sector("translation", "Translation and interpreting", "Übersetzen und Dolmetschen", "standard"),
    Sector("photography", "Photography (commissioned work)", "Fotografie (Auftragsarbeiten)", "standard"),
    Sector("event_technology", "Event technology", "Veranstaltungstechnik", "standard"),
    Sector("moderation", "Moderation and facilitation", "Moderation", "standard"),
    Sector("copyright_licensing", "Granting of copyrights (texts, images, music)",
           "Einräumung von Urheberrechten (Texte, Bilder, Musik)", "reduced"),
    Sector("journalism", "Journalism (rights of use)", "Journalismus (Nutzungsrechte)", "reduced"),
    Sector("teaching", "Certified teaching (§ 4 Nr. 21 UStG)", "Bescheinigte Unterrichtstätigkeit (§ 4 Nr. 21 UStG)",
           "exempt"),
    Sector("crafts", "Crafts", "Handwerk", "standard", processable=False),
    Sector("sale_of_goods", "Sale of goods", "Warenverkauf", "standard", processable=False),
    Sector("licensed_activity", "Activities that need a licence", "Erlaubnispflichtige Tätigkeiten", "standard",
           processable=False),
]}
