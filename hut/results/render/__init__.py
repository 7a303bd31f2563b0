"""The one renderer: tables as data (:mod:`.table`), written as md / tex / csv / html / text
(:mod:`.formats`), and documents of headings, paragraphs, lists and tables (:mod:`.doc`)."""
