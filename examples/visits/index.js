// Counts the visits to / in redis. The redis service is reachable by its
// name, `redis`, from every container of the project.
const express = require('express');
const redis = require('redis');

const client = redis.createClient({ url: 'redis://redis:6379' });
client.on('error', (err) => console.error('redis:', err.message));

const app = express();

app.get('/', async (req, res) => {
  const visits = await client.incr('visits');
  res.send('Number of visits is ' + visits);
});

client.connect().then(() => {
  app.listen(8081, () => console.log('Listening on port 8081'));
}).catch((err) => {
  // Exit non-zero: `restart = "on-failure"` starts the app again.
  console.error('cannot reach redis:', err.message);
  process.exit(1);
});
