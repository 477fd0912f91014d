package org.lora4j.train.text;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;

/**
 * A test tokenizer for any chat format: UTF-8 bytes (ids 0..255) and the given special tokens (256 + k),
 * matched first, longest first. Each byte has its character's span, each special token its own.
 */
final class SpecialsByteTokenizer implements Tokenizer {

    private final List<String> specials;
    private final int[] endTokenIds;

    SpecialsByteTokenizer(List<String> specials, List<String> endTokens) {
        this.specials = List.copyOf(specials);
        this.endTokenIds = endTokens.stream().mapToInt(t -> 256 + specials.indexOf(t)).toArray();
    }

    @Override
    public int[] encode(String text) {
        return encodeWithOffsets(text).ids();
    }

    @Override
    public Encoding encodeWithOffsets(String text) {
        List<int[]> tokens = new ArrayList<>();   // {id, start, end}
        int i = 0;
        while (i < text.length()) {
            int special = -1;
            for (int k = 0; k < specials.size(); k++) {
                if (text.startsWith(specials.get(k), i)
                        && (special < 0 || specials.get(k).length() > specials.get(special).length())) {
                    special = k;
                }
            }
            if (special >= 0) {
                tokens.add(new int[] {256 + special, i, i + specials.get(special).length()});
                i += specials.get(special).length();
                continue;
            }
            int end = i + Character.charCount(text.codePointAt(i));
            for (byte b : text.substring(i, end).getBytes(StandardCharsets.UTF_8)) {
                tokens.add(new int[] {b & 0xFF, i, end});
            }
            i = end;
        }
        return new Encoding(tokens.stream().mapToInt(t -> t[0]).toArray(),
                tokens.stream().mapToInt(t -> t[1]).toArray(), tokens.stream().mapToInt(t -> t[2]).toArray());
    }

    @Override
    public String decode(int[] ids) {
        StringBuilder text = new StringBuilder();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (int id : ids) {
            if (id < 256) {
                bytes.write(id);
            } else {
                text.append(bytes.toString(StandardCharsets.UTF_8)).append(specials.get(id - 256));
                bytes.reset();
            }
        }
        return text.append(bytes.toString(StandardCharsets.UTF_8)).toString();
    }

    @Override
    public int vocabSize() {
        return 256 + specials.size();
    }

    @Override
    public OptionalInt specialTokenId(String token) {
        int k = specials.indexOf(token);
        return k < 0 ? OptionalInt.empty() : OptionalInt.of(256 + k);
    }

    @Override
    public int[] endTokenIds() {
        return endTokenIds.clone();
    }
}
