//! The index schema and writing chunks into an index.

use std::path::Path;

use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, STORED,
    STRING,
};
use tantivy::{Index, IndexWriter, TantivyDocument};

use crate::analyzer::{analyzer, ANALYZER_NAME};
use crate::chunk::{chunk_document, ChunkOptions};
use crate::document::Document;
use crate::error::Result;

/// Bump whenever the schema, the analyzer or the chunker changes meaning: on-disk indexes built
/// by another format are rebuilt instead of being read with the wrong assumptions.
pub(crate) const INDEX_FORMAT: u32 = 1;

/// Writer heap: far above what a kb needs, so one segment holds everything.
const WRITER_HEAP_BYTES: usize = 64 * 1024 * 1024;

/// The fields of one chunk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    /// Exact domain name, for filtering.
    pub domain: Field,
    /// Document title, searched with a boost.
    pub title: Field,
    /// Heading path (`Title > Section`), searched with a smaller boost.
    pub heading: Field,
    /// Chunk text.
    pub body: Field,
    /// Document path relative to the kb root.
    pub path: Field,
    /// Chunk number within its document.
    pub chunk: Field,
}

impl Fields {
    fn schema() -> (Schema, Fields) {
        let text = TextOptions::default().set_stored().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER_NAME)
                // Frequencies for BM25; no positions, as queries are bags of words.
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        let mut builder = Schema::builder();
        let fields = Fields {
            domain: builder.add_text_field("domain", STRING | STORED),
            title: builder.add_text_field("title", text.clone()),
            heading: builder.add_text_field("heading", text.clone()),
            body: builder.add_text_field("body", text),
            path: builder.add_text_field("path", STRING | STORED),
            chunk: builder.add_u64_field("chunk", NumericOptions::default().set_stored()),
        };
        (builder.build(), fields)
    }

    /// Finds the fields in an index opened from disk.
    pub(crate) fn of(index: &Index) -> Result<Fields> {
        let schema = index.schema();
        Ok(Fields {
            domain: schema.get_field("domain")?,
            title: schema.get_field("title")?,
            heading: schema.get_field("heading")?,
            body: schema.get_field("body")?,
            path: schema.get_field("path")?,
            chunk: schema.get_field("chunk")?,
        })
    }
}

/// Creates an empty index in RAM, or in the (existing, empty) directory `dir`.
pub(crate) fn create_index(dir: Option<&Path>) -> Result<(Index, Fields)> {
    let (schema, fields) = Fields::schema();
    let index = match dir {
        Some(dir) => Index::create_in_dir(dir, schema)?,
        None => Index::create_in_ram(schema),
    };
    register_analyzer(&index);
    Ok((index, fields))
}

/// Makes the index's text fields analyzable; needed on every open.
pub(crate) fn register_analyzer(index: &Index) {
    index.tokenizers().register(ANALYZER_NAME, analyzer());
}

/// Chunks and indexes `documents`, merged into one segment; returns the number of chunks.
pub(crate) fn write_documents(
    index: &Index,
    fields: &Fields,
    documents: &[Document],
    options: &ChunkOptions,
) -> Result<usize> {
    let mut writer: IndexWriter = index.writer_with_num_threads(1, WRITER_HEAP_BYTES)?;
    let mut chunks = 0;
    for document in documents {
        for chunk in chunk_document(document, options) {
            let mut entry = TantivyDocument::default();
            entry.add_text(fields.domain, &document.domain);
            entry.add_text(fields.title, &document.title);
            entry.add_text(fields.heading, chunk.heading_path());
            entry.add_text(fields.body, &chunk.text);
            entry.add_text(fields.path, &document.path);
            entry.add_u64(fields.chunk, chunk.number as u64);
            writer.add_document(entry)?;
            chunks += 1;
        }
    }
    writer.commit()?;
    // One segment searches fastest; a huge synthetic kb may have spilled into several.
    let segments = index.searchable_segment_ids()?;
    if segments.len() > 1 {
        writer.merge(&segments).wait()?;
    }
    writer.wait_merging_threads()?;
    Ok(chunks)
}
