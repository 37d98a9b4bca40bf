"""First-run matching: pair unlinked items that already exist on both sides before creating any.

Tiers go strongest first (contacts: email, then name + company), and each item pairs at most once,
so two mailbox contacts sharing an email never both claim the same Salesforce contact.
"""

from __future__ import annotations

from collections.abc import Sequence

from scc_desktop.sync.fields import MATCH_KEYS, Kind, match_keys
from scc_desktop.sync.ports import SideItem


def match_items(
    kind: Kind, mailbox: Sequence[SideItem], salesforce: Sequence[SideItem]
) -> tuple[list[tuple[SideItem, SideItem]], list[SideItem], list[SideItem]]:
    """Pairs (mailbox, salesforce), then the unmatched of each side, in their input order."""
    pairs: list[tuple[SideItem, SideItem]] = []
    taken_mb: set[str] = set()
    taken_sf: set[str] = set()
    for tier in range(len(MATCH_KEYS[kind])):
        index: dict[str, list[SideItem]] = {}
        for item in salesforce:
            if item.id in taken_sf:
                continue
            for item_tier, key in match_keys(kind, item.fields):
                if item_tier == tier:
                    index.setdefault(key, []).append(item)
        if not index:
            continue
        for item in mailbox:
            if item.id in taken_mb:
                continue
            for item_tier, key in match_keys(kind, item.fields):
                if item_tier != tier:
                    continue
                candidates = [c for c in index.get(key, ()) if c.id not in taken_sf]
                if candidates:
                    partner = candidates[0]
                    pairs.append((item, partner))
                    taken_mb.add(item.id)
                    taken_sf.add(partner.id)
    rest_mb = [i for i in mailbox if i.id not in taken_mb]
    rest_sf = [i for i in salesforce if i.id not in taken_sf]
    return pairs, rest_mb, rest_sf
