//! XML at the edge: a small writer for S3 response documents (escaping every text node) and a
//! bounded parser that turns request bodies (CreateBucketConfiguration, Delete,
//! CompleteMultipartUpload) into a tiny element tree. This module knows no S3 semantics beyond
//! the namespace; it never panics on client input and never allocates beyond the size limits.

use quick_xml::events::Event;
use quick_xml::Reader;

/// The S3 namespace every response root carries.
pub const S3_NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Appends S3-style XML. Text is escaped so any UTF-8 key round-trips through clients.
#[derive(Debug)]
pub struct XmlWriter {
    out: String,
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlWriter {
    /// Starts a document with the XML declaration.
    pub fn new() -> Self {
        XmlWriter {
            out: String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#),
        }
    }

    /// Opens the root element, with the S3 namespace.
    pub fn root(&mut self, tag: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push_str(" xmlns=\"");
        self.out.push_str(S3_NS);
        self.out.push_str("\">");
        self
    }

    /// `<tag>`
    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// `</tag>`
    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// `<tag>escaped text</tag>`
    pub fn elem(&mut self, tag: &str, text: &str) -> &mut Self {
        self.open(tag);
        escape_into(&mut self.out, text);
        self.close(tag)
    }

    /// `<tag>text</tag>` when `text` is `Some`.
    pub fn elem_opt(&mut self, tag: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.elem(tag, t);
        }
        self
    }

    /// Raw markup (caller guarantees well-formedness), e.g. an element with attributes.
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    /// The finished document.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Escapes XML text: the five predefined entities, and control characters (and CR/LF/TAB, so
/// they survive XML end-of-line normalisation) as numeric character references.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("&#x{:X};", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// Escaped copy of `text` (see [`escape_into`]).
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    escape_into(&mut s, text);
    s
}

/// A parsed element: local name (namespace prefix dropped), concatenated text, children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name.
    pub name: String,
    /// Text directly inside this element (entities resolved).
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// First child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Text of the first child with this name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

/// The body is not well-formed XML or exceeds the parser's limits.
#[derive(Debug, thiserror::Error)]
#[error("malformed XML: {0}")]
pub struct XmlError(pub String);

const MAX_DEPTH: usize = 16;
const MAX_ELEMENTS: usize = 200_000;

/// Parses a whole document into its root element. Whitespace-only text is dropped; text of
/// leaf elements is kept verbatim (S3 keys may start or end with spaces).
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| XmlError("not UTF-8".into()))?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(false);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let ev = reader.read_event().map_err(|e| XmlError(e.to_string()))?;
        match ev {
            Event::Start(e) | Event::Empty(e) if root.is_some() => {
                let _ = e;
                return Err(XmlError("content after the root element".into()));
            }
            Event::Start(e) => {
                count += 1;
                if stack.len() >= MAX_DEPTH || count > MAX_ELEMENTS {
                    return Err(XmlError("document too deep or too large".into()));
                }
                stack.push(Element {
                    name: e.local_name().as_ref().to_string(),
                    ..Element::default()
                });
            }
            Event::Empty(e) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError("document too large".into()));
                }
                let el = Element {
                    name: e.local_name().as_ref().to_string(),
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let mut el = stack
                    .pop()
                    .ok_or_else(|| XmlError("unbalanced end tag".into()))?;
                if !el.children.is_empty() && el.text.trim().is_empty() {
                    el.text.clear();
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => match stack.last_mut() {
                Some(cur) => cur.text.push_str(&t.xml10_content()),
                None if t.trim().is_empty() => {}
                None => return Err(XmlError("text outside the root element".into())),
            },
            Event::CData(t) => match stack.last_mut() {
                Some(cur) => cur.text.push_str(&t.xml10_content()),
                None => return Err(XmlError("CDATA outside the root element".into())),
            },
            Event::GeneralRef(r) => {
                let resolved: String = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                        .ok_or_else(|| {
                            XmlError(format!("unknown entity &{};", &*r.xml10_content()))
                        })?
                        .to_string(),
                    Err(e) => return Err(XmlError(e.to_string())),
                };
                match stack.last_mut() {
                    Some(cur) => cur.text.push_str(&resolved),
                    None => return Err(XmlError("entity outside the root element".into())),
                }
            }
            Event::DocType(_) => return Err(XmlError("DTDs are not accepted".into())),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError("unexpected end of document".into()));
    }
    root.ok_or_else(|| XmlError("empty document".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(escape("x\ny\u{1}"), "x&#xA;y&#x1;");
    }

    #[test]
    fn writer_produces_a_namespaced_document() {
        let mut w = XmlWriter::new();
        w.root("R").elem("Key", "a&b").close("R");
        assert_eq!(
            w.finish(),
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><R xmlns=\"{S3_NS}\"><Key>a&amp;b</Key></R>")
        );
    }

    #[test]
    fn parses_nested_elements_entities_and_round_trips_escapes() {
        let key = " sp\u{1}ace & <x>\r\n";
        let doc = format!(
            "<?xml version=\"1.0\"?>\n<Delete xmlns=\"{S3_NS}\">\n  <Object><Key>{}</Key></Object>\n  <Quiet>true</Quiet>\n</Delete>",
            escape(key)
        );
        let root = parse(doc.as_bytes()).unwrap();
        assert_eq!(root.name, "Delete");
        assert_eq!(root.child_text("Quiet"), Some("true"));
        let obj = root.child("Object").unwrap();
        assert_eq!(obj.child_text("Key"), Some(key));
    }

    #[test]
    fn rejects_malformed_documents() {
        for bad in [
            &b"<a><b></a>"[..],
            b"<a>",
            b"",
            b"not xml",
            b"<a/><b/>",
            b"<!DOCTYPE x [<!ENTITY e 'x'>]><a>&e;</a>",
            b"<a>&unknown;</a>",
            b"\xff\xfe",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn rejects_excessive_depth() {
        let doc = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(doc.as_bytes()).is_err());
    }
}
