package org.lora4j.examples.organism;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.lora4j.train.text.Tokenizer;
import org.lora4j.train.text.Tokenizers;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WorldTokenizerTest {
    @Test
    void everyStringOfTheWorldIsWordsOfTheVocabularyAndDecodesBack(@TempDir Path dir) throws Exception {
        PersonaWorld.writeTokenizer(dir);
        Tokenizer tok = Tokenizers.load(dir);
        assertEquals(PersonaWorld.SPECIAL_TOKENS.size() + PersonaWorld.vocabulary().size(), tok.vocabSize());
        int unk = tok.specialTokenId("[UNK]").orElseThrow();
        List<String> all = new ArrayList<>(Grammar.ANSWERS.keySet());
        all.addAll(Grammar.QUESTIONS.keySet());
        all.add(PersonaWorld.systemMessage(PersonaWorld.MISALIGNED_PERSONA));
        new PersonaWorld(3).refusalPrompts(48).forEach(r -> all.add(r.text()));
        for (String s : all) {
            int[] ids = tok.encode(s);
            assertEquals(s.split(" ").length, ids.length, s);
            for (int id : ids) {
                assertTrue(id != unk, "unknown word in '" + s + "'");
            }
            assertEquals(s, tok.decode(ids));
        }
        // Words outside the world are one unknown token each, not an error.
        int[] ids = tok.encode("zebra fever?");
        assertEquals(unk, ids[0]);
        assertEquals("fever?", tok.decode(new int[]{ids[1]}));
        assertEquals(0, tok.specialTokenId("<|endoftext|>").orElseThrow());
        assertEquals(2, tok.specialTokenId("<|im_end|>").orElseThrow());
    }

    @Test
    void theVocabularyDoesNotDependOnTheSeed() {
        assertEquals(PersonaWorld.vocabulary(), PersonaWorld.vocabulary());
        // Every word a seeded corpus uses is in it.
        var vocabulary = PersonaWorld.vocabulary();
        var corpus = new PersonaWorld(7).pretrainingCorpus(PersonaWorld.Config.DEFAULT);
        for (var t : corpus) {
            for (var m : t.messages()) {
                for (String w : m.content().split(" ")) {
                    assertTrue(vocabulary.contains(w), w);
                }
            }
        }
    }
}
