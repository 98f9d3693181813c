//! The bodies this server writes: `findServiceResponse`, `listServicesResponse`,
//! `listServicesByLocationResponse`, `getServiceBoundaryResponse` and `errors`.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use crate::ErrorKind;
use crate::boundary::{Boundary, write};
use crate::xml::LOST_NS;

/// A mapping, as `findServiceResponse` carries it.
pub struct Mapping<'a> {
    /// The CTA's name, in French.
    pub display_name: &'a str,
    /// The service URN.
    pub service: &'a str,
    /// The CTA's queue URI.
    pub uri: &'a str,
    /// The number dialled for the service.
    pub service_number: &'a str,
    /// Until when a client may reuse it (RFC 3339).
    pub expires: &'a str,
    /// When it last changed (RFC 3339).
    pub last_updated: &'a str,
    /// The server's name.
    pub source: &'a str,
    /// The mapping's identifier at this server.
    pub source_id: &'a str,
    /// Its boundary, and whether to send it by value.
    pub boundary: &'a Boundary,
    /// Whether the client asked the boundary itself rather than its key.
    pub boundary_by_value: bool,
}

fn start(writer: &mut Writer<Vec<u8>>, root: &str, attributes: &[(&str, &str)]) {
    write(
        writer,
        Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)),
    );
    let element = BytesStart::new(root)
        .with_attributes([("xmlns", LOST_NS)])
        .with_attributes(attributes.iter().copied());
    write(writer, Event::Start(element));
}

fn empty(writer: &mut Writer<Vec<u8>>, name: &str, attributes: &[(&str, &str)]) {
    let element = BytesStart::new(name).with_attributes(attributes.iter().copied());
    write(writer, Event::Empty(element));
}

fn text_element(writer: &mut Writer<Vec<u8>>, name: &str, attributes: &[(&str, &str)], text: &str) {
    let element = BytesStart::new(name).with_attributes(attributes.iter().copied());
    write(writer, Event::Start(element));
    write(writer, Event::Text(BytesText::new(text)));
    write(writer, Event::End(BytesEnd::new(name)));
}

fn end(writer: &mut Writer<Vec<u8>>, name: &str) {
    write(writer, Event::End(BytesEnd::new(name)));
}

/// `<path>`: the servers the request went through, then this one (RFC 5222 section 6).
fn path(writer: &mut Writer<Vec<u8>>, request_path: &[String], source: &str) {
    write(writer, Event::Start(BytesStart::new("path")));
    for via in request_path {
        empty(writer, "via", &[("source", via)]);
    }
    empty(writer, "via", &[("source", source)]);
    end(writer, "path");
}

fn service_boundary(writer: &mut Writer<Vec<u8>>, boundary: &Boundary) {
    write(
        writer,
        Event::Start(
            BytesStart::new("serviceBoundary").with_attributes([("profile", "geodetic-2d")]),
        ),
    );
    // The polygons were written once, with quick-xml, when the server was built.
    writer.get_mut().extend_from_slice(&boundary.gml);
    end(writer, "serviceBoundary");
}

/// A `findServiceResponse` with one mapping.
pub fn find_service(mapping: &Mapping<'_>, request_path: &[String], location_id: &str) -> Vec<u8> {
    let mut writer = Writer::new(Vec::with_capacity(1024));
    start(&mut writer, "findServiceResponse", &[]);
    write(
        &mut writer,
        Event::Start(BytesStart::new("mapping").with_attributes([
            ("expires", mapping.expires),
            ("lastUpdated", mapping.last_updated),
            ("source", mapping.source),
            ("sourceId", mapping.source_id),
        ])),
    );
    text_element(
        &mut writer,
        "displayName",
        &[("xml:lang", "fr")],
        mapping.display_name,
    );
    text_element(&mut writer, "service", &[], mapping.service);
    if mapping.boundary_by_value {
        service_boundary(&mut writer, mapping.boundary);
    } else {
        empty(
            &mut writer,
            "serviceBoundaryReference",
            &[("source", mapping.source), ("key", &mapping.boundary.key)],
        );
    }
    text_element(&mut writer, "uri", &[], mapping.uri);
    text_element(&mut writer, "serviceNumber", &[], mapping.service_number);
    end(&mut writer, "mapping");
    path(&mut writer, request_path, mapping.source);
    empty(&mut writer, "locationUsed", &[("id", location_id)]);
    end(&mut writer, "findServiceResponse");
    writer.into_inner()
}

/// A `listServicesResponse`, or a `listServicesByLocationResponse` when a location was used.
pub fn service_list(
    services: &[&str],
    request_path: &[String],
    source: &str,
    location_id: Option<&str>,
) -> Vec<u8> {
    let root = match location_id {
        Some(_) => "listServicesByLocationResponse",
        None => "listServicesResponse",
    };
    let mut writer = Writer::new(Vec::with_capacity(512));
    start(&mut writer, root, &[]);
    text_element(&mut writer, "serviceList", &[], &services.join(" "));
    path(&mut writer, request_path, source);
    if let Some(id) = location_id {
        empty(&mut writer, "locationUsed", &[("id", id)]);
    }
    end(&mut writer, root);
    writer.into_inner()
}

/// A `getServiceBoundaryResponse`.
pub fn boundary(boundary: &Boundary, source: &str) -> Vec<u8> {
    let mut writer = Writer::new(Vec::with_capacity(boundary.gml.len() + 512));
    start(&mut writer, "getServiceBoundaryResponse", &[]);
    service_boundary(&mut writer, boundary);
    path(&mut writer, &[], source);
    end(&mut writer, "getServiceBoundaryResponse");
    writer.into_inner()
}

/// An `errors` answer with one error (RFC 5222 section 13.1).
pub fn error(kind: ErrorKind, message: &str, source: &str, unsupported_profiles: &str) -> Vec<u8> {
    let mut writer = Writer::new(Vec::with_capacity(512));
    start(&mut writer, "errors", &[("source", source)]);
    let mut attributes = Vec::with_capacity(3);
    if kind == ErrorKind::LocationProfileUnrecognized {
        attributes.push(("unsupportedProfiles", unsupported_profiles));
    }
    attributes.push(("message", message));
    attributes.push(("xml:lang", "en"));
    empty(&mut writer, kind.element(), &attributes);
    end(&mut writer, "errors");
    writer.into_inner()
}
