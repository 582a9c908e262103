"""The Sui client: pysui behind an asyncio bridge; Blob objects, extension, deletion and the anchor."""
