// Parses Adaptive Cards with Microsoft's adaptivecards package: reads a JSON array of cards on
// stdin, prints a JSON array with, per card, the parse and validation messages (empty = clean).
const path = require("path");
const AC = require(path.join(process.argv[2], "adaptivecards", "dist", "adaptivecards.js"));

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const results = JSON.parse(input).map((json) => {
    const card = new AC.AdaptiveCard();
    const context = new AC.SerializationContext();
    card.parse(json, context);
    const problems = [];
    for (let i = 0; i < context.eventCount; i++) {
      const e = context.getEventAt(i);
      problems.push(`parse: ${e.message}`);
    }
    for (const e of card.validateProperties().validationEvents) {
      problems.push(`validate: ${e.message}`);
    }
    return { version: card.version ? card.version.toString() : null, problems };
  });
  process.stdout.write(JSON.stringify(results));
});
