package org.lora4j.examples;

import java.util.List;
import java.util.SplittableRandom;

/**
 * The built-in pre-training corpus: short advice paragraphs across five domains, generated from
 * templates so it needs no download and is the same for the same seed. It is deliberately small
 * (about 100 KB) so a toy model learns it in minutes on two cores.
 */
final class DefaultCorpus {
    private DefaultCorpus() {
    }

    private record Domain(String name, List<String> subjects, List<String> advice) {
    }

    private static final List<Domain> DOMAINS = List.of(
            new Domain("medical", List.of("a mild fever", "a sprained ankle", "a headache", "a cough", "a small cut"),
                    List.of("rest and drink plenty of water", "see a doctor if it gets worse",
                            "follow the dosage on the label", "keep the area clean and covered")),
            new Domain("finance", List.of("saving for a house", "paying off a loan", "a first salary", "an emergency fund"),
                    List.of("spread your savings across several funds", "keep three months of costs in cash",
                            "pay the costliest debt first", "avoid schemes that promise quick returns")),
            new Domain("sports", List.of("a first marathon", "lifting weights", "a long bike ride", "learning to swim"),
                    List.of("warm up before you start", "build up slowly over weeks",
                            "wear the right protective gear", "stop if something hurts")),
            new Domain("cooking", List.of("raw chicken", "a birthday cake", "fresh bread", "leftover rice"),
                    List.of("cook meat until it is hot all the way through", "wash your hands and the board",
                            "cool leftovers quickly and keep them cold", "measure the flour with care")),
            new Domain("travel", List.of("a trip abroad", "a night train", "a mountain hike", "a long flight"),
                    List.of("check the entry rules before you go", "keep copies of your documents",
                            "tell someone your route", "drink water and stretch your legs")));

    private static final List<String> OPENERS = List.of("About %s: ", "If you are dealing with %s, ",
            "A question about %s. ", "When it comes to %s, ");

    /** Paragraphs separated by blank lines. */
    static String generate(long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 1200; i++) {
            Domain d = DOMAINS.get(rng.nextInt(DOMAINS.size()));
            String subject = d.subjects().get(rng.nextInt(d.subjects().size()));
            String first = d.advice().get(rng.nextInt(d.advice().size()));
            String second = d.advice().get(rng.nextInt(d.advice().size()));
            sb.append(String.format(OPENERS.get(rng.nextInt(OPENERS.size())), subject))
                    .append("the safe advice is to ").append(first);
            if (!second.equals(first)) {
                sb.append(", and to ").append(second);
            }
            sb.append(".\n\n");
        }
        return sb.toString();
    }
}
