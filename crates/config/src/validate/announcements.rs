//! The announcements callers hear, and the names rules and CTAs give them by.

use std::collections::{HashMap, HashSet};

use toml::Spanned;

use super::Checker;
use crate::plan::*;
use crate::raw::*;

pub(super) fn announcements(raw: &RawConfig, c: &mut Checker<'_>) -> Vec<Announcement> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for a in &raw.announcements {
        let a = a.get_ref();
        if !seen.insert(a.id.get_ref().clone()) {
            c.at(
                a.id.span(),
                format!("announcement {:?} is defined twice", a.id.get_ref()),
            );
        }
        if a.text.trim().is_empty() {
            c.at(a.id.span(), "an announcement needs its text");
        }
        out.push(Announcement {
            id: a.id.get_ref().clone(),
            text: a.text.clone(),
            file: a.file.clone(),
            menu: a.menu,
        });
    }
    out
}

pub(super) fn lookup_announcement(
    name: Option<&Spanned<String>>,
    index: &HashMap<String, AnnouncementId>,
    c: &mut Checker<'_>,
) -> Option<AnnouncementId> {
    let name = name?;
    let found = index.get(name.get_ref()).copied();
    if found.is_none() {
        c.at(
            name.span(),
            format!("unknown announcement {:?}", name.get_ref()),
        );
    }
    found
}
