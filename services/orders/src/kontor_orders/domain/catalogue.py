"""The sector catalogue: what members do, how it is taxed, whether the cooperative can take it.

`vat_rule`: `standard` (19 %, § 12 Abs. 1 UStG), `reduced` (7 %, granting and transferring
copyrights, § 12 Abs. 2 Nr. 7 Buchst. c UStG) or `exempt` (teaching certified by the competent
state authority, § 4 Nr. 21 Buchst. a Doppelbuchst. bb UStG). Sectors that are not processable
(crafts, sale of goods, activities needing a licence) are rejected on submission.

Checked against the seeds (the member chooses the sector "according to the service you provide";
the VAT rate follows from it, the place of service and the client; their example service is a
teaching activity) and the UStG:
- Teaching is exempt only with the authority's certificate (§ 4 Nr. 21 a bb); without it, it is
  an ordinary service at 19 %: `teaching` (certified, exempt) and `teaching_uncertified` (19 %).
- Only the grant of rights of use under copyright law is reduced (§ 12 Abs. 2 Nr. 7c):
  `copyright_licensing` and `journalism` (articles whose rights of use are granted). Design,
  software, translation, photography on commission and moderation are services at 19 % unless
  the order is the grant of rights, which the member then books as `copyright_licensing`.
- Codes are stored on orders and never change meaning; new sectors get new codes.
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
    Sector("teaching_uncertified", "Teaching without certificate (courses, workshops)",
           "Unterrichtstätigkeit ohne Bescheinigung (Kurse, Workshops)", "standard"),
    Sector("crafts", "Crafts", "Handwerk", "standard", processable=False),
    Sector("sale_of_goods", "Sale of goods", "Warenverkauf", "standard", processable=False),
    Sector("licensed_activity", "Activities that need a licence", "Erlaubnispflichtige Tätigkeiten", "standard",
           processable=False),
]}
