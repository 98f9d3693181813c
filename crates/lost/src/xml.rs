//! A bounded tree of the request's elements, read with quick-xml's namespace-aware reader.
//!
//! A LoST request is a few dozen elements: reading it whole into a small arena, then walking it,
//! is simpler to get right than a streaming state machine and costs a few microseconds. Every
//! dimension is bounded so that hostile bytes cost no more than the largest honest request.

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// Largest request body read; RFC 5222 requests with one location are a few hundred bytes.
pub const REQUEST_BYTES_MAX: usize = 64 * 1024;
/// Elements in one request: a polygon of a few hundred vertices still fits (`posList`).
const ELEMENTS_MAX: usize = 1_024;
/// Nesting of elements.
const DEPTH_MAX: usize = 32;
/// Attributes read on one element.
const ATTRIBUTES_MAX: usize = 32;

/// The namespaces the server reads; every other one is an extension it skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns {
    /// `urn:ietf:params:xml:ns:lost1`.
    Lost,
    /// `http://www.opengis.net/gml`.
    Gml,
    /// `http://www.opengis.net/pidflo/1.0` (RFC 5491 shapes: Circle, Ellipse, ArcBand).
    Shapes,
    /// `urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr` (RFC 5139).
    Civic,
    /// No namespace.
    None,
    /// Any other namespace.
    Other,
}

/// The LoST namespace (RFC 5222 section 17.1).
pub const LOST_NS: &str = "urn:ietf:params:xml:ns:lost1";
/// The GML namespace of RFC 5491 shapes.
pub const GML_NS: &str = "http://www.opengis.net/gml";
/// The namespace of RFC 5491's own shapes.
pub const SHAPES_NS: &str = "http://www.opengis.net/pidflo/1.0";
/// The civic address namespace of RFC 5139.
pub const CIVIC_NS: &str = "urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr";

impl Ns {
    fn of(result: &ResolveResult<'_>) -> Ns {
        match result {
            ResolveResult::Bound(ns) => match ns.0 {
                LOST_NS => Ns::Lost,
                GML_NS => Ns::Gml,
                SHAPES_NS => Ns::Shapes,
                CIVIC_NS => Ns::Civic,
                _ => Ns::Other,
            },
            ResolveResult::Unbound => Ns::None,
            // An undeclared prefix is a namespace error: reported before this is called.
            ResolveResult::Unknown(_) => Ns::Other,
        }
    }
}

/// One element: its resolved name, its unprefixed attributes, its text, its children.
#[derive(Debug)]
pub struct Element {
    /// Namespace.
    pub ns: Ns,
    /// Local name.
    pub name: String,
    /// Unprefixed attributes (`id`, `profile`, `source`…), in document order.
    pub attributes: Vec<(String, String)>,
    /// Character data directly inside it, references resolved.
    pub text: String,
    /// Indexes of its child elements in the tree.
    pub children: Vec<usize>,
}

impl Element {
    /// The value of an unprefixed attribute.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed document; element 0 is the root.
#[derive(Debug)]
pub struct Tree {
    elements: Vec<Element>,
}

impl Tree {
    /// The root element.
    pub fn root(&self) -> &Element {
        // parse() returns a tree only once the root element has been read.
        &self.elements[0]
    }

    /// The child elements of an element, in document order.
    pub fn children<'a>(&'a self, element: &'a Element) -> impl Iterator<Item = &'a Element> + 'a {
        element.children.iter().map(|&i| &self.elements[i])
    }
}

/// Why the bytes are not a document this server reads; the text goes into `badRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct XmlError(pub String);

fn fail<T>(message: impl Into<String>) -> Result<T, XmlError> {
    Err(XmlError(message.into()))
}

/// Reads a whole document into a tree, refusing DTDs, undeclared prefixes and anything past
/// the bounds.
pub fn parse(bytes: &[u8]) -> Result<Tree, XmlError> {
    if bytes.len() > REQUEST_BYTES_MAX {
        return fail(format!(
            "request of {} bytes, more than {REQUEST_BYTES_MAX}",
            bytes.len()
        ));
    }
    let mut reader = NsReader::from_reader(bytes);
    let config = reader.config_mut();
    config.expand_empty_elements = true;
    config.check_end_names = true;
    let mut elements: Vec<Element> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut closed_root = false;
    loop {
        let (resolved, event) = match reader.read_resolved_event() {
            Ok(pair) => pair,
            Err(error) => return fail(format!("not well-formed XML: {error}")),
        };
        match event {
            Event::Start(start) => {
                if closed_root {
                    return fail("content after the root element");
                }
                if let ResolveResult::Unknown(prefix) = &resolved {
                    return fail(format!("undeclared prefix {:?}", clip(prefix)));
                }
                if open.len() >= DEPTH_MAX {
                    return fail("elements nested too deep");
                }
                if elements.len() >= ELEMENTS_MAX {
                    return fail("too many elements");
                }
                let ns = Ns::of(&resolved);
                let name = start.local_name().as_ref().to_owned();
                let mut attributes = Vec::new();
                for attribute in start.attributes() {
                    let attribute = match attribute {
                        Ok(a) => a,
                        Err(error) => return fail(format!("bad attribute: {error}")),
                    };
                    let key = attribute.key.as_ref();
                    // Prefixed attributes (xmlns:*, xml:lang, gml:id) carry nothing this server
                    // reads; `xmlns` itself is a declaration, not an attribute.
                    if key.contains(':') || key == "xmlns" {
                        continue;
                    }
                    if attributes.len() >= ATTRIBUTES_MAX {
                        return fail("too many attributes");
                    }
                    let value = match attribute.normalized_value(XmlVersion::Implicit1_0) {
                        Ok(v) => v.into_owned(),
                        Err(error) => return fail(format!("bad attribute value: {error}")),
                    };
                    attributes.push((key.to_owned(), value));
                }
                let index = elements.len();
                if let Some(&parent) = open.last() {
                    elements[parent].children.push(index);
                }
                elements.push(Element {
                    ns,
                    name,
                    attributes,
                    text: String::new(),
                    children: Vec::new(),
                });
                open.push(index);
            }
            Event::End(_) => {
                open.pop();
                if open.is_empty() {
                    closed_root = true;
                }
            }
            Event::Text(text) => {
                let piece = text.xml10_content();
                push_text(&mut elements, &open, &piece)?;
            }
            Event::CData(data) => {
                let piece = data.xml10_content();
                push_text(&mut elements, &open, &piece)?;
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match &*reference {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "apos" => '\'',
                        "quot" => '"',
                        other => return fail(format!("undeclared entity {:?}", clip(other))),
                    },
                    Err(error) => return fail(format!("bad character reference: {error}")),
                };
                push_text(&mut elements, &open, resolved.encode_utf8(&mut [0; 4]))?;
            }
            Event::DocType(_) => return fail("a document type declaration is not accepted"),
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::Empty(_) => {}
        }
    }
    if !open.is_empty() {
        return fail("the document ends inside an element");
    }
    if elements.is_empty() {
        return fail("no root element");
    }
    Ok(Tree { elements })
}

fn push_text(elements: &mut [Element], open: &[usize], piece: &str) -> Result<(), XmlError> {
    match open.last() {
        Some(&i) => {
            elements[i].text.push_str(piece);
            Ok(())
        }
        None if piece.trim().is_empty() => Ok(()),
        None => fail("text outside the root element"),
    }
}

/// A client's string cut short and stripped of controls, to quote it in a message.
pub fn clip(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(48).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_namespaces_attributes_and_text() {
        let tree = parse(
            br#"<?xml version="1.0"?><a xmlns="urn:ietf:params:xml:ns:lost1" xmlns:g="http://www.opengis.net/gml" k="v &amp; w"><g:pos>1 &#50;</g:pos><b/><x xmlns="urn:other"/></a>"#,
        )
        .expect("parses");
        let root = tree.root();
        assert_eq!((root.ns, root.name.as_str()), (Ns::Lost, "a"));
        assert_eq!(root.attribute("k"), Some("v & w"));
        let children: Vec<_> = tree.children(root).collect();
        assert_eq!(children.len(), 3);
        assert_eq!(
            (children[0].ns, children[0].text.as_str()),
            (Ns::Gml, "1 2")
        );
        assert_eq!(children[1].ns, Ns::Lost);
        assert_eq!(children[2].ns, Ns::Other);
    }

    #[test]
    fn refuses_what_it_must() {
        for bad in [
            &b""[..],
            b"<a>",
            b"<a></b>",
            b"<a/><b/>",
            b"<p:a/>",
            b"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
            b"<a>&x;</a>",
            b"text",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "<a>".repeat(DEPTH_MAX + 1);
        assert!(parse(deep.as_bytes()).is_err());
        let big = vec![b' '; REQUEST_BYTES_MAX + 1];
        assert!(parse(&big).is_err());
    }
}
