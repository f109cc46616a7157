// Prints the fields of the messages the five RPCs use, as @zitadel/proto defines them.
import { UserService } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import { ErrorDetailSchema } from "@zitadel/proto/zitadel/message_pb.js";

const out = {};
function visit(message) {
  if (out[message.typeName]) return;
  out[message.typeName] = {};
  for (const field of message.fields) {
    const entry = { number: field.number, kind: field.fieldKind, oneof: field.oneof?.name ?? null };
    if (field.fieldKind === "scalar") entry.type = field.scalar;
    if (field.fieldKind === "list") entry.type = field.listKind;
    if (field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message")) {
      entry.type = field.message.typeName;
      visit(field.message);
    }
    if (field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "enum")) {
      entry.type = field.enum.typeName;
      entry.values = Object.fromEntries(field.enum.values.map((v) => [v.name, v.number]));
    }
    if (field.fieldKind === "map") entry.type = `map<${field.mapKey},${field.mapKind}>`;
    out[message.typeName][field.name] = entry;
  }
}
const { methods } = JSON.parse(process.argv[2]);
for (const method of UserService.methods) {
  if (methods.includes(method.name)) {
    visit(method.input);
    visit(method.output);
  }
}
visit(ErrorDetailSchema);
console.log(JSON.stringify(out));
