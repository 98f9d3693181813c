//! The partner services calls are handed to (SAMU 15, police 17…): one SIP URI per service.

use super::Checker;
use crate::plan::*;
use crate::raw::*;

pub(super) fn partner_services(raw: &RawConfig, c: &mut Checker<'_>) -> Vec<PartnerService> {
    let mut out: Vec<PartnerService> = Vec::new();
    for p in &raw.partner_services {
        let p = p.get_ref();
        let Some(service) = Service::parse(p.service.get_ref()) else {
            c.at(
                p.service.span(),
                format!(
                    "unknown service {:?}: 15, 17, or a urn:service:sos.* URN",
                    p.service.get_ref()
                ),
            );
            continue;
        };
        let uri = p.uri.get_ref();
        if !(uri.starts_with("sip:") || uri.starts_with("sips:")) || uri.len() < 6 {
            c.at(
                p.uri.span(),
                format!("uri {uri:?} must be a sip: or sips: URI"),
            );
            continue;
        }
        if out.iter().any(|o| o.service == service) {
            c.at(p.service.span(), "this service has a partner already");
            continue;
        }
        out.push(PartnerService {
            service,
            uri: uri.clone(),
            name: p
                .name
                .clone()
                .unwrap_or_else(|| p.service.get_ref().clone()),
        });
    }
    out
}
