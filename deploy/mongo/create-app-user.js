// Runs once, when the mongo container initialises an empty data volume
// (docker-compose.yml mounts it into /docker-entrypoint-initdb.d/). It creates the account the
// web server uses, with readWrite on vid2scene's database only; the root account stays for
// administration and backups. Changing these variables later changes nothing: the volume exists.
const dbName = process.env.MONGO_APP_DB;
const user = process.env.MONGO_APP_USER;
const password = process.env.MONGO_APP_PASSWORD;
if (!dbName || !user || !password) {
  throw new Error("MONGO_APP_DB, MONGO_APP_USER and MONGO_APP_PASSWORD must be set");
}
db.getSiblingDB(dbName).createUser({
  user: user,
  pwd: password,
  roles: [{ role: "readWrite", db: dbName }],
});
print(`created user ${user} with readWrite on ${dbName}`);
