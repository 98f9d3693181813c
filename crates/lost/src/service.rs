//! The service URNs (RFC 5031) this server maps, and those it knows it does not.

/// A service this server answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// `urn:service:sos`: any emergency; in France the 112, answered by the fire service.
    Sos,
    /// `urn:service:sos.fire`: the 18.
    Fire,
}

impl Service {
    /// Every service this server maps, parents first.
    pub const ALL: [Service; 2] = [Service::Sos, Service::Fire];

    /// The URN, as this server writes it.
    pub fn urn(self) -> &'static str {
        match self {
            Service::Sos => "urn:service:sos",
            Service::Fire => "urn:service:sos.fire",
        }
    }

    /// The number a caller dials for it in France.
    pub fn number(self) -> &'static str {
        match self {
            Service::Sos => "112",
            Service::Fire => "18",
        }
    }

    /// Short name used in mapping identifiers.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Service::Sos => "sos",
            Service::Fire => "sos.fire",
        }
    }
}

/// What a requested service URN is to this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// One it maps.
    Served(Service),
    /// An emergency service that exists in France but that another network routes (SAMU 15,
    /// police 17): a `notFound`, since this server has no mapping for it anywhere.
    ElsewhereInFrance,
    /// Anything else: a `serviceNotImplemented`.
    Unknown,
}

/// Classifies a service URN; RFC 5031 URNs compare case-insensitively.
pub fn classify(urn: &str) -> Requested {
    let urn = urn.trim();
    let is = |wanted: &str| urn.eq_ignore_ascii_case(wanted);
    if is("urn:service:sos") {
        Requested::Served(Service::Sos)
    } else if is("urn:service:sos.fire") {
        Requested::Served(Service::Fire)
    } else if is("urn:service:sos.ambulance") || is("urn:service:sos.police") {
        Requested::ElsewhereInFrance
    } else {
        Requested::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urns() {
        assert_eq!(
            classify(" URN:Service:SOS "),
            Requested::Served(Service::Sos)
        );
        assert_eq!(
            classify("urn:service:sos.fire"),
            Requested::Served(Service::Fire)
        );
        assert_eq!(
            classify("urn:service:sos.police"),
            Requested::ElsewhereInFrance
        );
        assert_eq!(classify("urn:service:sos.firefly"), Requested::Unknown);
        assert_eq!(classify("urn:service:counseling"), Requested::Unknown);
        for s in Service::ALL {
            assert_eq!(classify(s.urn()), Requested::Served(s));
        }
    }
}
